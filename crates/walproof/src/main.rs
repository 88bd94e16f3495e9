//! Entry point: parse the command line and dispatch.

use clap::Parser;
use walproof::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Inspect { record, hex } => {
            let rendered = walproof::inspect::run(&record, hex)?;
            #[allow(clippy::print_stdout)]
            {
                print!("{rendered}");
            }
        }
    }
    Ok(())
}
