//! The initial snapshot's progress on a terminal: one bar per table, redrawn in place.
//! (Without a terminal the decoder logs the same figures every 5 seconds instead.)

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;
use walproof_source::metrics::DecoderMetrics;
use walproof_source::snapshot::TableSnapshot;

/// Width of the bar itself, in characters.
const BAR: usize = 30;

/// One line per table: name, bar, estimated percent, rows copied, rows/s.
pub fn render(tables: &[TableSnapshot]) -> Vec<String> {
    let name_width = tables.iter().map(|t| t.name.len()).max().unwrap_or(0);
    tables
        .iter()
        .map(|table| {
            let percent = table.percent();
            let filled = ((percent / 100.0) * BAR as f64).round() as usize;
            let bar = format!(
                "{}{}",
                "#".repeat(filled),
                ".".repeat(BAR - filled.min(BAR))
            );
            let status = if table.done {
                format!(
                    "{} rows, {:.0} rows/s, done",
                    table.copied, table.rows_per_second
                )
            } else if table.started {
                format!("{} rows, {:.0} rows/s", table.copied, table.rows_per_second)
            } else {
                "waiting".to_owned()
            };
            format!(
                "{:<name_width$}  [{bar}] {percent:>3.0}%  {status}",
                table.name
            )
        })
        .collect()
}

/// Draws the snapshot's bars on standard error until the snapshot is written (or not needed)
/// or `shutdown`.
pub async fn draw(metrics: Arc<DecoderMetrics>, mut shutdown: watch::Receiver<bool>) {
    let mut drawn = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let finished = metrics.snapshot.finished.load(Relaxed);
        let tables = metrics.snapshot.tables();
        if !tables.is_empty() {
            let mut out = std::io::stderr().lock();
            if drawn > 0 {
                let _ = write!(out, "\x1b[{drawn}A"); // back to the first bar
            }
            let lines = render(&tables);
            for line in &lines {
                let _ = writeln!(out, "\x1b[2K{line}");
            }
            let _ = out.flush();
            drawn = lines.len();
        }
        if finished {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, estimate: u64, copied: u64, started: bool, done: bool) -> TableSnapshot {
        TableSnapshot {
            name: name.into(),
            estimate,
            copied,
            started,
            done,
            rows_per_second: 1234.4,
        }
    }

    #[test]
    fn bars_show_percent_rows_and_rate_with_names_aligned() {
        let lines = render(&[
            table("public.big", 1000, 500, true, false),
            table("public.t", 10, 10, true, true),
            table("public.later", 5, 0, false, false),
        ]);
        assert_eq!(
            lines[0],
            format!(
                "public.big    [{}{}]  50%  500 rows, 1234 rows/s",
                "#".repeat(15),
                ".".repeat(15)
            )
        );
        assert_eq!(
            lines[1],
            format!(
                "public.t      [{}] 100%  10 rows, 1234 rows/s, done",
                "#".repeat(30)
            )
        );
        assert!(lines[2].ends_with("  0%  waiting"), "{}", lines[2]);
    }

    #[test]
    fn an_estimate_below_the_rows_copied_stays_below_full_until_done() {
        let lines = render(&[table("t", 10, 50, true, false)]);
        assert!(lines[0].contains(" 99% "), "{}", lines[0]);
    }
}
