//! The load benchmark's report logic (goals from the rounds), run as tests: the bench itself
//! has no test harness, so its `#[cfg(test)]` module runs from here.

#[allow(dead_code)]
#[path = "../benches/load/report.rs"]
mod report;
