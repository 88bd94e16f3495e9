//! `walproof archive ls` and `get`: the archive's files as its index lists them, and one
//! object, opened.

use std::io::Write as _;

use walproof_archive::archiver::{Archiver, RollSettings};
use walproof_archive::objects::Objects;
use walproof_archive::seal::Sealer;

/// Writes object `name` (opened, when the archive is sealed) to `out` or standard output.
pub async fn get(
    objects: Objects,
    prefix: &str,
    sealer: Option<Sealer>,
    name: &str,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let place = objects.place();
    let archiver = Archiver::open(objects, prefix, RollSettings::default(), sealer).await?;
    let bytes = archiver
        .get(name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no object {name} in {place}"))?;
    match out {
        Some(path) => std::fs::write(path, bytes)
            .map_err(|err| anyhow::anyhow!("--out {}: {err}", path.display()))?,
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(())
}

/// One line per file: table, first and last commit LSN, rows, SMT root (or `-`), object name;
/// then where the archive stands.
pub async fn list(
    objects: Objects,
    prefix: &str,
    sealer: Option<Sealer>,
) -> anyhow::Result<String> {
    let place = objects.place();
    let archiver = Archiver::open(objects, prefix, RollSettings::default(), sealer).await?;
    let index = archiver.index();
    let mut out = String::new();
    for file in &index.files {
        out += &format!(
            "{} {} {} {} {} {}\n",
            file.table,
            file.first_lsn,
            file.last_lsn,
            file.rows,
            file.root
                .map_or_else(|| "-".to_owned(), |root| root.to_string()),
            file.object
        );
    }
    out += &match index.position {
        Some(position) => format!(
            "# {} files in {place}, through {}{}\n",
            index.files.len(),
            position.commit_lsn,
            index
                .pending
                .map(|p| format!(" (a roll through {} pending)", p.commit_lsn))
                .unwrap_or_default()
        ),
        None => format!("# no files in {place} under {prefix}/\n"),
    };
    Ok(out)
}
