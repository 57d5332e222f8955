//! `vm_storm --perf`: what the engine adds to the workload, symbol by symbol, and what the
//! engine's daemon spends itself. The guest prints two `perf report --show-nr-samples --sort
//! comm,sym` listings (the last round with the engine, the last without); this module
//! subtracts the second from the first and turns sample counts into guest instructions per
//! operation (one sample every `period` instructions).

use std::collections::HashMap;

/// The engine's command name.
const ENGINE: &str = "enforcer";
/// Commands that are not the workload (the engine, the profiler).
const NOT_WORKLOAD: &[&str] = &[ENGINE, "perf"];

/// Samples per `(command, symbol)` of one `perf report --show-nr-samples` listing. Lines that
/// are not rows (headers, comments, blank lines) are skipped.
pub(crate) fn parse(lines: &[String]) -> HashMap<(String, String), u64> {
    let mut rows = HashMap::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let (Some(percent), Some(samples), Some(comm)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        let (true, Ok(samples)) = (percent.ends_with('%'), samples.parse::<u64>()) else {
            continue;
        };
        // `[k]` or `[.]`, then the symbol (which may contain spaces).
        let symbol = words.skip(1).collect::<Vec<_>>().join(" ");
        *rows.entry((comm.to_owned(), symbol)).or_insert(0) += samples;
    }
    rows
}

/// One symbol's cost in the workload with the engine minus without, in guest instructions per
/// operation.
#[derive(Debug, PartialEq)]
pub(crate) struct Delta {
    pub(crate) symbol: String,
    pub(crate) with: f64,
    pub(crate) without: f64,
}

impl Delta {
    pub(crate) fn added(&self) -> f64 {
        self.with - self.without
    }
}

/// The workload's symbols (all commands but [`NOT_WORKLOAD`], summed over commands), with
/// and without the engine, per operation, largest increase first.
pub(crate) fn workload_deltas(
    with: &HashMap<(String, String), u64>,
    without: &HashMap<(String, String), u64>,
    period: u64,
    operations: u64,
) -> Vec<Delta> {
    let per_op = |samples: u64| samples as f64 * period as f64 / operations.max(1) as f64;
    let by_symbol = |rows: &HashMap<(String, String), u64>| {
        let mut sums: HashMap<String, u64> = HashMap::new();
        for ((comm, symbol), samples) in rows {
            if !NOT_WORKLOAD.contains(&comm.as_str()) {
                *sums.entry(symbol.clone()).or_insert(0) += samples;
            }
        }
        sums
    };
    let (with, without) = (by_symbol(with), by_symbol(without));
    let mut symbols: Vec<&String> = with.keys().chain(without.keys()).collect();
    symbols.sort();
    symbols.dedup();
    let mut deltas: Vec<Delta> = symbols
        .into_iter()
        .map(|symbol| Delta {
            symbol: symbol.clone(),
            with: per_op(with.get(symbol).copied().unwrap_or(0)),
            without: per_op(without.get(symbol).copied().unwrap_or(0)),
        })
        .collect();
    deltas.sort_by(|a, b| b.added().total_cmp(&a.added()));
    deltas
}

/// The engine's daemon's own symbols (command `enforcer`) in the round with it, per operation,
/// largest first: the daemon's share of the CPU, where `workload_deltas` leaves it out.
pub(crate) fn engine_costs(
    with: &HashMap<(String, String), u64>,
    period: u64,
    operations: u64,
) -> Vec<(String, f64)> {
    let per_op = |samples: u64| samples as f64 * period as f64 / operations.max(1) as f64;
    let mut costs: Vec<(String, f64)> = with
        .iter()
        .filter(|((comm, _), _)| comm == ENGINE)
        .map(|((_, symbol), samples)| (symbol.clone(), per_op(*samples)))
        .collect();
    costs.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    costs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn rows_are_parsed_and_headers_skipped() {
        let rows = parse(&lines(
            "# Overhead  Samples  Command  Symbol\n\
             #\n\
             \x20   9.90%     1980  true             [k] clear_page_erms\n\
             \x20   0.16%       32  true             [k] bpf_prog_73f4_lsm_mmap_file\n\
             \x20   0.10%       20  enforcer         [.] serde_json::ser::format_escaped_str\n\
             \x20   0.05%       10  true             [k] clear_page_erms\n",
        ));
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[&("true".into(), "clear_page_erms".into())], 1990);
        assert_eq!(
            rows[&("true".into(), "bpf_prog_73f4_lsm_mmap_file".into())],
            32
        );
    }

    #[test]
    fn deltas_leave_out_the_engine_and_sort_by_increase() {
        let with = parse(&lines(
            "  1.0%  100  true  [k] a\n  1.0%  50  sh  [k] a\n  1.0%  40  true  [k] b\n\
             1.0%  500  enforcer  [.] c\n",
        ));
        let without = parse(&lines(
            "  1.0%  120  true  [k] a\n  1.0%  10  true  [k] d\n",
        ));
        let deltas = workload_deltas(&with, &without, 1000, 10);
        let names: Vec<&str> = deltas.iter().map(|d| d.symbol.as_str()).collect();
        assert_eq!(names, ["b", "a", "d"]);
        assert_eq!(deltas[0].added(), 4000.0);
        assert_eq!(deltas[1].with, 15_000.0);
        assert_eq!(deltas[1].added(), 3000.0);
        assert_eq!(deltas[2].added(), -1000.0);
    }

    #[test]
    fn the_engine_costs_are_its_own_symbols_per_operation() {
        let with = parse(&lines(
            "  1.0%  100  true  [k] a\n  1.0%  30  enforcer  [.] serde\n\
             1.0%  50  enforcer  [k] do_epoll_wait\n",
        ));
        let costs = engine_costs(&with, 1000, 10);
        assert_eq!(
            costs,
            [
                ("do_epoll_wait".to_owned(), 5000.0),
                ("serde".to_owned(), 3000.0)
            ]
        );
    }
}
