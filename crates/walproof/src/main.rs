//! Entry point: parse the command line, set up logging and signals, dispatch.

use std::process::ExitCode;

use clap::Parser;
use tokio::sync::watch;
use walproof::cli::{Cli, Command};
use walproof::config::FileConfig;

/// mimalloc: a copy stage allocates a string per value and another thread frees it; glibc's
/// malloc spent a fifth of the snapshot's CPU on that (perf, 1M rows).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or a collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Every HTTPS client in the process (GCS, a chain's JSON-RPC) uses rustls with ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", walproof::error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let file = FileConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Setup(args) => {
            let outcome = walproof::setup::run(args, &file).await?;
            print!("{}", outcome.report);
            Ok(if outcome.ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Decode(args) => {
            walproof::decode::run(*args, file, shutdown_signal()?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Commit(args) => {
            let options = args.options(&file);
            let proof_addr = args.proof_addr(&file);
            let settings = args.kafka.settings(&file);
            walproof::commit::run(
                &settings,
                &options,
                proof_addr.as_deref(),
                shutdown_signal()?,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Archive(args) => {
            match args.command {
                Some(walproof::cli::ArchiveCommand::Ls) => {
                    let objects = args.place.objects(&file).await?;
                    let sealer = args.place.sealer(&file)?;
                    let prefix = args.kafka.settings(&file).topic_prefix;
                    print!(
                        "{}",
                        walproof::archive::list(objects, &prefix, sealer).await?
                    );
                }
                Some(walproof::cli::ArchiveCommand::Get {
                    ref object,
                    ref out,
                }) => {
                    let objects = args.place.objects(&file).await?;
                    let sealer = args.place.sealer(&file)?;
                    let prefix = args.kafka.settings(&file).topic_prefix;
                    walproof::archive::get(objects, &prefix, sealer, object, out.as_deref())
                        .await?;
                }
                None => {
                    let objects = args.place.objects(&file).await?;
                    let sealer = args.place.sealer(&file)?;
                    let roll = args.roll(&file);
                    let settings = args.kafka.settings(&file);
                    walproof_archive::run::run(
                        &settings,
                        objects,
                        roll,
                        sealer,
                        shutdown_signal()?,
                    )
                    .await?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate(args) => {
            let validate = walproof::validate::Validate::resolve(&args, &file)?;
            let settings = args.kafka.settings(&file);
            walproof::validate::run(&settings, validate, shutdown_signal()?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Relayer(args) => {
            let relayer = walproof::relayer::Relayer::resolve(&args, &file)?;
            let settings = args.kafka.settings(&file);
            walproof::relayer::run(&settings, relayer, shutdown_signal()?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Chain(command) => {
            print!("{}", walproof::relayer::chain(command, &file).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let stages = walproof::run::Stages::from_environment()?;
            let plan = walproof::run::Plan::resolve(args, stages, &file).await?;
            walproof::run::run(plan, file, shutdown_signal()?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Roots(args) => {
            print!("{}", walproof::roots::run(args, &file).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Prove(args) => {
            print!("{}", walproof::proofs::prove(args, &file).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            root,
            values,
            columns,
            proof,
        } => {
            let columns = (!columns.is_empty()).then_some(columns.as_slice());
            println!(
                "{}",
                walproof::proofs::verify(&root, values.as_deref(), columns, &proof)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(args) => {
            print!("{}", walproof::keys::run(args, &file).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { record, hex } => {
            print!("{}", walproof::inspect::run(&record, hex)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Turns true on SIGTERM or SIGINT (Ctrl-C).
fn shutdown_signal() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (stop, stopped) = watch::channel(false);
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: stopping cleanly"),
            _ = interrupt.recv() => tracing::info!("SIGINT: stopping cleanly"),
        }
        let _ = stop.send(true);
    });
    Ok(stopped)
}
