//! `walproof run`: the decoder, committer, archiver and a validator in one process.
//!
//! Single-machine mode. Each stage is wired exactly as its own command wires it
//! ([`crate::decode`], [`crate::commit`], `walproof_archive::run`, [`crate::validate`]); this
//! module only resolves their settings together, refuses what would collide before anything
//! starts, runs the stages side by side on one runtime and stops them together: the operator's
//! signal, or any stage ending, stops every stage through their shutdown watch.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{Context as _, anyhow};
use clap::{Args, FromArgMatches};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;
use walproof_archive::archiver::RollSettings;
use walproof_archive::objects::Objects;
use walproof_archive::seal::Sealer;
use walproof_committer::run::CommitOptions;
use walproof_transport::KafkaSettings;

use crate::cli::{ArchiveArgs, CommitArgs, DecodeArgs, RunArgs, ValidateArgs};
use crate::config::FileConfig;
use crate::relayer::{Relayer, RelayerArgs};
use crate::validate::Validate;
use walproof_relayer::deploy::Deployment;

/// Each stage's arguments, as that stage's own command reads them.
#[derive(Debug)]
pub struct Stages {
    /// `walproof decode`'s.
    pub decode: DecodeArgs,
    /// `walproof commit`'s.
    pub commit: CommitArgs,
    /// `walproof archive`'s.
    pub archive: ArchiveArgs,
    /// `walproof validate`'s.
    pub validate: ValidateArgs,
    /// `walproof relayer`'s.
    pub relayer: RelayerArgs,
}

impl Stages {
    /// What each stage's command reads when given no flags: its `WALPROOF_*` variables. This is
    /// how `walproof run` honours every stage's variables without repeating every stage's flags.
    pub fn from_environment() -> anyhow::Result<Stages> {
        Stages::read(true)
    }

    /// `environment: false` reads nothing at all (the tests' starting point).
    fn read(environment: bool) -> anyhow::Result<Stages> {
        Ok(Stages {
            decode: stage_args("decode", "decoder", environment)?,
            commit: stage_args("commit", "committer", environment)?,
            archive: stage_args("archive", "archiver", environment)?,
            validate: stage_args("validate", "validator", environment)?,
            relayer: stage_args("relayer", "relayer", environment)?,
        })
    }
}

/// Parses the arguments of `walproof <command>` (the `stage`) from an empty command line.
fn stage_args<T: Args + FromArgMatches>(
    command: &'static str,
    stage: &'static str,
    environment: bool,
) -> anyhow::Result<T> {
    let mut parser = T::augment_args(clap::Command::new(command));
    if !environment {
        parser = parser.mut_args(|arg| arg.env(None));
    }
    let invalid = |err: clap::Error| {
        // clap's rendering ends with a usage hint for a command line nobody typed: keep the
        // first line, and say where the value came from.
        let text = err.to_string();
        let problem = text.lines().next().unwrap_or_default();
        anyhow!(
            "{stage}: {} (from its WALPROOF_* variable, see `walproof {command} --help`)",
            problem.trim_start_matches("error: ")
        )
    };
    let matches = parser.try_get_matches_from([command]).map_err(invalid)?;
    T::from_arg_matches(&matches).map_err(invalid)
}

/// The committer, resolved.
#[derive(Debug)]
pub struct Committer {
    /// Kafka and topics.
    pub settings: KafkaSettings,
    /// The store and its sync, retention and compaction.
    pub options: CommitOptions,
    /// The proof API's address, `None` when off.
    pub proof_addr: Option<String>,
}

/// The archiver, resolved.
#[derive(Debug)]
pub struct Archiver {
    /// Kafka and topics.
    pub settings: KafkaSettings,
    /// Where the archive is kept.
    pub objects: Objects,
    /// When files are rolled.
    pub roll: RollSettings,
    /// The sealer of an encrypted archive.
    pub sealer: Option<Sealer>,
}

/// The validator, resolved.
#[derive(Debug)]
pub struct Validator {
    /// Kafka and topics.
    pub settings: KafkaSettings,
    /// Shadow, key, domain, audits, HTTP.
    pub validate: Validate,
}

/// The relayer, resolved.
#[derive(Debug)]
pub struct RelayerStage {
    /// Kafka and topics.
    pub settings: KafkaSettings,
    /// Chain, bridge, key, batching, HTTP.
    pub relayer: Relayer,
}

/// Every stage `walproof run` runs, its settings resolved.
#[derive(Debug)]
pub struct Plan {
    /// The decoder's arguments (it resolves them against the file itself, as `walproof decode`).
    pub decode: DecodeArgs,
    /// The committer.
    pub committer: Committer,
    /// The archiver, unless --no-archive.
    pub archiver: Option<Archiver>,
    /// The validator, unless --no-validator.
    pub validator: Option<Validator>,
    /// The relayer, when a bridge is configured (--deployment, or the relayer's own
    /// settings) and not --no-relayer.
    pub relayer: Option<RelayerStage>,
}

impl Plan {
    /// Resolves every stage: `run`'s flags first, then what each stage read (`stages`), then
    /// the file, then defaults. Errors name the stage and the setting that is missing or
    /// wrong; nothing has started then.
    pub async fn resolve(run: RunArgs, stages: Stages, file: &FileConfig) -> anyhow::Result<Plan> {
        let Stages {
            mut decode,
            mut commit,
            mut archive,
            mut validate,
            mut relayer,
        } = stages;
        // The shared flags reach every stage.
        let kafka = &run.kafka;
        for stage in [
            &mut decode.kafka,
            &mut commit.kafka,
            &mut archive.kafka,
            &mut validate.kafka,
            &mut relayer.kafka,
        ] {
            overlay(&mut stage.brokers, &kafka.brokers);
            overlay(&mut stage.topic_prefix, &kafka.topic_prefix);
        }
        overlay(&mut decode.source.source_url, &run.source.source_url);
        overlay(&mut decode.source.slot, &run.source.slot);
        overlay(&mut decode.source.publication, &run.source.publication);
        overlay(&mut commit.state_dir, &run.state_dir);
        overlay(&mut archive.place.dir, &run.archive_dir);
        overlay(&mut validate.shadow_url, &run.shadow_url);
        overlay(&mut validate.key_file, &run.key_file);
        overlay(&mut relayer.chain.deployment, &run.deployment);
        // The validator signs for the deployment's bridge and chain unless told otherwise.
        let deployment = match relayer
            .chain
            .deployment
            .clone()
            .or(file.relayer.deployment.clone())
        {
            Some(path) => Some(
                Deployment::read(&path).map_err(|err| anyhow!("relayer: --deployment: {err}"))?,
            ),
            None => None,
        };
        if let Some(deployment) = &deployment {
            if validate.bridge.is_none() && file.validator.bridge.is_none() {
                validate.bridge = Some(deployment.bridge.to_checksum(None));
            }
            if validate.chain_id.is_none() && file.validator.chain_id.is_none() {
                validate.chain_id = Some(deployment.chain_id);
            }
        }

        if decode.source.source_url.is_none() && file.source.url.is_none() {
            anyhow::bail!(
                "decoder: no source URL: pass --source-url, set WALPROOF_SOURCE_URL, or [source] url in the config file"
            );
        }
        let committer = Committer {
            options: commit.options(file),
            proof_addr: commit.proof_addr(file),
            settings: commit.kafka.settings(file),
        };
        let archiver = if run.no_archive {
            None
        } else {
            let place = &archive.place;
            Some(Archiver {
                objects: place.objects(file).await.context("archiver")?,
                sealer: place.sealer(file).context("archiver")?,
                roll: archive.roll(file),
                settings: archive.kafka.settings(file),
            })
        };
        let validator = if run.no_validator {
            None
        } else {
            let resolved = Validate::resolve(&validate, file).map_err(|err| {
                anyhow!(
                    "validator: {} (or run without a validator: --no-validator)",
                    crate::error_chain(&err)
                )
            })?;
            Some(Validator {
                validate: resolved,
                settings: validate.kafka.settings(file),
            })
        };
        let configured =
            relayer.chain.bridge.is_some() || file.relayer.bridge.is_some() || deployment.is_some();
        let relayer = if run.no_relayer || !configured {
            None
        } else {
            Some(RelayerStage {
                relayer: Relayer::resolve(&relayer, file).map_err(|err| {
                    anyhow!(
                        "relayer: {} (or run without a relayer: --no-relayer)",
                        crate::error_chain(&err)
                    )
                })?,
                settings: relayer.kafka.settings(file),
            })
        };
        let plan = Plan {
            decode,
            committer,
            archiver,
            validator,
            relayer,
        };
        check_addresses(&plan.addresses(file))?;
        Ok(plan)
    }

    /// The HTTP address each stage will listen on: (stage, where it is set, address).
    fn addresses(&self, file: &FileConfig) -> Vec<(&'static str, &'static str, String)> {
        let mut addresses = Vec::new();
        if let Some(addr) = self.decode.metrics_addr(file) {
            addresses.push((
                "decoder",
                "WALPROOF_METRICS_ADDR or [decoder] metrics_addr",
                addr,
            ));
        }
        if let Some(addr) = &self.committer.proof_addr {
            addresses.push((
                "committer",
                "WALPROOF_PROOF_ADDR or [committer] proof_addr",
                addr.clone(),
            ));
        }
        if let Some(addr) = self
            .validator
            .as_ref()
            .and_then(|v| v.validate.http_addr.clone())
        {
            addresses.push((
                "validator",
                "WALPROOF_VALIDATOR_HTTP_ADDR or [validator] http_addr",
                addr,
            ));
        }
        if let Some(addr) = self
            .relayer
            .as_ref()
            .and_then(|r| r.relayer.http_addr.clone())
        {
            addresses.push((
                "relayer",
                "WALPROOF_RELAYER_HTTP_ADDR or [relayer] http_addr",
                addr,
            ));
        }
        addresses
    }

    /// The stages that will run, in pipeline order.
    pub fn stage_names(&self) -> Vec<&'static str> {
        let mut names = vec!["decoder", "committer"];
        if self.archiver.is_some() {
            names.push("archiver");
        }
        if self.validator.is_some() {
            names.push("validator");
        }
        if self.relayer.is_some() {
            names.push("relayer");
        }
        names
    }
}

/// `value` replaces `target` when given.
fn overlay<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        target.clone_from(value);
    }
}

/// Two stages cannot listen on one address; said before anything starts, naming both settings.
fn check_addresses(addresses: &[(&'static str, &'static str, String)]) -> anyhow::Result<()> {
    for (i, (stage, setting, addr)) in addresses.iter().enumerate() {
        for (other, other_setting, other_addr) in &addresses[i + 1..] {
            if collide(addr, other_addr) {
                anyhow::bail!(
                    "the {stage} ({addr}) and the {other} ({other_addr}) would listen on one address: change {setting}, or {other_setting}"
                );
            }
        }
    }
    Ok(())
}

/// Whether two listen addresses take the same port (port 0 picks a free one: never).
fn collide(a: &str, b: &str) -> bool {
    match (a.parse::<SocketAddr>(), b.parse::<SocketAddr>()) {
        (Ok(a), Ok(b)) => {
            a.port() == b.port()
                && a.port() != 0
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
        }
        // Host names: only the same text is surely the same address.
        _ => a == b,
    }
}

/// Runs every stage of `plan` until `shutdown` or until one of them ends; then stops the
/// others and waits for all. Returns the first failure, named by its stage.
pub async fn run(
    plan: Plan,
    file: FileConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // One watch for every stage: the operator's signal or a stage's end turns it true.
    let (stop, stopping) = watch::channel(false);
    {
        let stop = stop.clone();
        let mut signal = shutdown;
        tokio::spawn(async move {
            if signal.wait_for(|s| *s).await.is_ok() {
                stop.send_replace(true);
            }
        });
    }
    tracing::info!(
        stages = plan.stage_names().join(", "),
        "walproof run starting"
    );
    let mut stages = JoinSet::new();
    let mut names = HashMap::new();
    let Plan {
        decode,
        committer,
        archiver,
        validator,
        relayer,
    } = plan;
    {
        let shutdown = stopping.clone();
        let task = crate::decode::run(decode, file, shutdown);
        let id = stages
            .spawn(task.instrument(tracing::info_span!("decoder")))
            .id();
        names.insert(id, "decoder");
    }
    {
        let shutdown = stopping.clone();
        let task = async move {
            crate::commit::run(
                &committer.settings,
                &committer.options,
                committer.proof_addr.as_deref(),
                shutdown,
            )
            .await
        };
        let id = stages
            .spawn(task.instrument(tracing::info_span!("committer")))
            .id();
        names.insert(id, "committer");
    }
    if let Some(archiver) = archiver {
        let shutdown = stopping.clone();
        let task = async move {
            walproof_archive::run::run(
                &archiver.settings,
                archiver.objects,
                archiver.roll,
                archiver.sealer,
                shutdown,
            )
            .await
            .map_err(anyhow::Error::from)
        };
        let id = stages
            .spawn(task.instrument(tracing::info_span!("archiver")))
            .id();
        names.insert(id, "archiver");
    }
    if let Some(validator) = validator {
        let shutdown = stopping.clone();
        let task = async move {
            crate::validate::run(&validator.settings, validator.validate, shutdown).await
        };
        let id = stages
            .spawn(task.instrument(tracing::info_span!("validator")))
            .id();
        names.insert(id, "validator");
    }
    if let Some(stage) = relayer {
        let shutdown = stopping.clone();
        let task =
            async move { crate::relayer::run(&stage.settings, stage.relayer, shutdown).await };
        let id = stages
            .spawn(task.instrument(tracing::info_span!("relayer")))
            .id();
        names.insert(id, "relayer");
    }

    let mut first_failure = None;
    while let Some(joined) = stages.join_next_with_id().await {
        let (id, outcome) = match joined {
            Ok((id, result)) => (id, result),
            Err(err) if err.is_panic() => (err.id(), Err(anyhow!("panicked"))),
            Err(err) => (err.id(), Err(anyhow!("was cancelled"))),
        };
        let stage = names.get(&id).copied().unwrap_or("a stage");
        let asked = *stop.borrow();
        let running = stages.len();
        match outcome {
            Ok(()) if asked => tracing::info!("{stage} stopped; {running} still stopping"),
            Ok(()) => {
                tracing::warn!("{stage} ended on its own: stopping the {running} other stages");
            }
            Err(err) => {
                tracing::error!(
                    "{stage} failed: {}; stopping the {running} other stages",
                    crate::error_chain(&err)
                );
                first_failure.get_or_insert(err.context(format!("{stage} failed")));
            }
        }
        stop.send_replace(true);
    }
    match first_failure {
        Some(err) => Err(err),
        None => {
            tracing::info!("every stage stopped cleanly");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;
    use crate::cli::{Cli, Command};

    /// `walproof run ARGS` with the environment ignored, so a developer's WALPROOF_* variables
    /// do not change what the tests see.
    fn run_args(args: &[&str]) -> RunArgs {
        let no_env = |arg: clap::Arg| arg.env(None);
        let command = Cli::command()
            .mut_args(no_env)
            .mut_subcommand("run", |run| run.mut_args(no_env));
        let argv = ["walproof", "run"].iter().chain(args);
        let cli = Cli::from_arg_matches(&command.try_get_matches_from(argv).unwrap()).unwrap();
        match cli.command {
            Command::Run(args) => args,
            other => panic!("parsed {other:?}"),
        }
    }

    async fn resolve(args: &[&str], file: &str) -> anyhow::Result<Plan> {
        let file: FileConfig = toml::from_str(file).unwrap();
        Plan::resolve(run_args(args), Stages::read(false).unwrap(), &file).await
    }

    /// A development key (hex), in a file of its own.
    fn key_file(name: &str) -> String {
        let path =
            std::env::temp_dir().join(format!("walproof-run-{name}-{}.key", std::process::id()));
        std::fs::write(
            &path,
            "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        path.display().to_string()
    }

    #[tokio::test]
    async fn shared_flags_reach_every_stage_and_the_file_fills_in_the_rest() {
        let key = key_file("shared");
        let plan = resolve(
            &[
                "--source-url",
                "postgres://postgres@127.0.0.1:54329/shop",
                "--brokers",
                "127.0.0.1:19092",
                "--topic-prefix",
                "demo",
                "--state-dir",
                "/tmp/committer",
                "--archive-dir",
                "/tmp/archive",
                "--shadow-url",
                "postgres://postgres@127.0.0.1:54329/shop_shadow",
                "--key-file",
                &key,
            ],
            "[kafka]\nbrokers = 'file:9092'\n\
             [committer]\nsync_interval_ms = 100\n\
             [archive]\nroll_interval_ms = 5000\n\
             [validator]\nchain_id = 1\n",
        )
        .await
        .unwrap();
        let _ = std::fs::remove_file(&key);
        assert_eq!(
            plan.decode.kafka.brokers.as_deref(),
            Some("127.0.0.1:19092")
        );
        assert_eq!(plan.decode.kafka.topic_prefix.as_deref(), Some("demo"));
        let archiver = plan.archiver.as_ref().unwrap();
        let validator = plan.validator.as_ref().unwrap();
        for settings in [
            &plan.committer.settings,
            &archiver.settings,
            &validator.settings,
        ] {
            assert_eq!(settings.brokers, "127.0.0.1:19092");
            assert_eq!(settings.topic_prefix, "demo");
        }
        assert_eq!(
            plan.committer.options.state_dir.as_deref(),
            Some(std::path::Path::new("/tmp/committer"))
        );
        assert_eq!(
            plan.committer.options.sync_every,
            std::time::Duration::from_millis(100)
        );
        assert_eq!(archiver.objects.place(), "/tmp/archive");
        assert_eq!(archiver.roll.max_age, std::time::Duration::from_secs(5));
        assert_eq!(
            validator.validate.options.shadow_url,
            "postgres://postgres@127.0.0.1:54329/shop_shadow"
        );
        assert_eq!(validator.validate.options.domain.chain_id, 1);
        // The stages' default addresses do not collide.
        assert_eq!(
            plan.addresses(&FileConfig::default())
                .into_iter()
                .map(|(stage, _, addr)| format!("{stage} {addr}"))
                .collect::<Vec<_>>(),
            [
                "decoder 127.0.0.1:9187",
                "committer 127.0.0.1:9188",
                "validator 127.0.0.1:9189"
            ]
        );
        assert_eq!(
            plan.stage_names(),
            ["decoder", "committer", "archiver", "validator"]
        );
    }

    #[tokio::test]
    async fn a_validator_without_a_shadow_database_is_refused_by_name_unless_left_out() {
        let source = ["--source-url", "postgres://postgres@127.0.0.1:54329/shop"];
        let err = resolve(&source, "").await.unwrap_err().to_string();
        assert!(err.starts_with("validator: no shadow database"), "{err}");
        assert!(
            err.contains("--shadow-url") && err.contains("--no-validator"),
            "{err}"
        );

        let left_out = [&source[..], &["--no-validator", "--no-archive"]].concat();
        let plan = resolve(&left_out, "").await.unwrap();
        assert!(plan.validator.is_none() && plan.archiver.is_none());
        assert_eq!(plan.stage_names(), ["decoder", "committer"]);
    }

    #[tokio::test]
    async fn a_validator_without_a_key_is_refused_naming_where_a_key_comes_from() {
        let err = resolve(
            &[
                "--source-url",
                "postgres://postgres@127.0.0.1:54329/shop",
                "--shadow-url",
                "postgres://postgres@127.0.0.1:54329/shop_shadow",
                "--key-file",
                "/nonexistent/validator.key",
            ],
            "",
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("validator: "), "{err}");
        assert!(err.contains("/nonexistent/validator.key"), "{err}");
    }

    #[tokio::test]
    async fn no_source_url_is_refused_naming_the_setting() {
        let err = resolve(&["--no-validator"], "")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("decoder: no source URL"), "{err}");
        assert!(err.contains("[source] url"), "{err}");
        // The file's URL is enough.
        let plan = resolve(
            &["--no-validator"],
            "[source]\nurl = 'postgres://postgres@127.0.0.1:54329/shop'\n",
        )
        .await;
        assert!(plan.is_ok(), "{plan:?}");
    }

    #[tokio::test]
    async fn two_stages_on_one_address_are_refused_naming_both_settings() {
        let err = resolve(
            &[
                "--source-url",
                "postgres://postgres@127.0.0.1:54329/shop",
                "--no-validator",
            ],
            "[decoder]\nmetrics_addr = '0.0.0.0:9188'\n",
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("decoder (0.0.0.0:9188)"), "{err}");
        assert!(err.contains("committer (127.0.0.1:9188)"), "{err}");
        assert!(err.contains("[decoder] metrics_addr"), "{err}");
        assert!(err.contains("[committer] proof_addr"), "{err}");
        // Turned off, an address collides with nothing.
        let plan = resolve(
            &[
                "--source-url",
                "postgres://postgres@127.0.0.1:54329/shop",
                "--no-validator",
            ],
            "[decoder]\nmetrics_addr = 'off'\n[committer]\nproof_addr = '127.0.0.1:9187'\n",
        )
        .await;
        assert!(plan.is_ok(), "{plan:?}");
    }

    #[test]
    fn addresses_collide_on_one_port_of_one_host_or_of_any_host() {
        assert!(collide("127.0.0.1:9188", "127.0.0.1:9188"));
        assert!(collide("0.0.0.0:9188", "127.0.0.1:9188"));
        assert!(collide("[::]:9188", "127.0.0.1:9188"));
        assert!(!collide("127.0.0.1:9188", "127.0.0.1:9189"));
        assert!(!collide("127.0.0.1:9188", "127.0.0.2:9188"));
        assert!(!collide("127.0.0.1:0", "127.0.0.1:0"));
        assert!(collide("localhost:9188", "localhost:9188"));
    }
}
