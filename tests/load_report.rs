//! The load benchmark's report logic (goals from the rounds) and its rounds' order and
//! pairing, run as tests: the bench itself has no test harness, so their `#[cfg(test)]`
//! modules run from here.

#[allow(dead_code)]
#[path = "../benches/load/report.rs"]
mod report;

#[allow(dead_code)]
#[path = "../benches/load/rounds.rs"]
mod rounds;
