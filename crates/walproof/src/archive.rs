//! `walproof archive ls`: the archive's files as its index lists them.

use walproof_archive::archiver::{Archiver, RollSettings};
use walproof_archive::objects::Objects;

/// One line per file: table, first and last commit LSN, rows, SMT root (or `-`), object name;
/// then where the archive stands.
pub async fn list(objects: Objects, prefix: &str) -> anyhow::Result<String> {
    let place = objects.place();
    let archiver = Archiver::open(objects, prefix, RollSettings::default()).await?;
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
