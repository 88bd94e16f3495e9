//! `walproof inspect`: verify and print one ledger record.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use walproof_core::SealedEntry;

/// Reads the record at `path` (`-` for stdin), verifies it and renders it for a person.
pub fn run(path: &Path, hex_input: bool) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
    } else {
        bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    }
    if hex_input {
        let text = String::from_utf8(bytes).context("--hex input is not text")?;
        bytes = hex::decode(text.trim()).context("--hex input is not hex")?;
    }
    let sealed = SealedEntry::from_bytes(&bytes).context("not a valid ledger record")?;
    let entry = sealed
        .decode_entry()
        .context("the record's entry is not valid")?;
    Ok(format!(
        "prev_hash: {}\nhash:      {}\nentry:     {entry:#?}\n",
        sealed.prev_hash, sealed.hash
    ))
}
