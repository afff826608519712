// The process-wide allocator; the benchmark's passthrough baseline sets the same one, so their
// comparison is like for like (ARCHITECTURE.md, "Allocator: jemalloc"). Set in the binaries,
// not the library, so tests can count allocations with their own.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (tikv-jemallocator prefixes its symbols with `_rjem_`):
/// a background thread returns freed pages to the system within a second, so memory used once
/// (the token table's build, a burst of streams) does not stay resident while the gateway idles.
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: &u8 = &b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tollgate::config::Config;
use tollgate::mock::MockSettings;
use tollgate::server::{self, RunFlags};
use tollgate::store::cli as usage;

/// Tollgate: an AI gateway on Pingora. One endpoint for OpenAI (chat, Responses, embeddings) and
/// Anthropic Messages clients, in front of many LLM providers.
#[derive(Parser)]
#[command(name = "tollgate", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Configuration file (runs the gateway when no subcommand is given).
    #[arg(short, long, value_name = "FILE")]
    config: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

// Parsed once at start-up: the mock's many flags make one variant large, which costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway.
    Run {
        /// Configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: String,
        /// Run in the background (Pingora daemon mode).
        #[arg(short, long)]
        daemon: bool,
        /// Take over the listening sockets of a running instance (zero-downtime upgrade).
        #[arg(short, long)]
        upgrade: bool,
    },
    /// Validate a configuration file: exit 0, or print every error and exit 1.
    Check {
        /// Configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: String,
    },
    /// Report usage from the ledger: every request, or totals grouped by key, user, team,
    /// model, backend and day.
    Usage {
        /// Configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: String,
        /// From (inclusive): RFC 3339, a date, unix seconds, or back from now (`24h`, `7d`).
        #[arg(long)]
        since: Option<String>,
        /// Until (exclusive), in the same forms.
        #[arg(long)]
        until: Option<String>,
        /// Comma-separated: key,user,team,model,backend,day.
        #[arg(long)]
        group_by: Option<String>,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Print the targets of a model's route in the order the next request would try them,
    /// with each one's state (live from the running gateway's admin listener when it answers).
    Route {
        /// Configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: String,
        /// The model, as a client would send it.
        #[arg(long)]
        model: String,
        /// The client key's name (the affinity strategy's key).
        #[arg(long)]
        key: Option<String>,
        /// The request's region.
        #[arg(long)]
        region: Option<String>,
    },
    /// Print the SHA-256 of a client API key, for `[[keys]] sha256` (reads stdin without KEY).
    HashKey { key: Option<String> },
    /// Run the mock provider for tests, benchmarks and demos: OpenAI (chat, Responses,
    /// embeddings), Azure OpenAI, Anthropic, Gemini, Vertex AI (Gemini and Claude) and Bedrock.
    Mock {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: String,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[command(flatten)]
        settings: MockSettings,
    },
}

fn load(path: &str) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(1)
    })
}

fn init_logging(level: &str) {
    tollgate::observe::log_guard::install(level);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        None => match cli.config {
            Some(c) => run(c, false, false),
            None => {
                eprintln!("usage: tollgate -c FILE (see `tollgate --help`)");
                ExitCode::from(2)
            }
        },
        Some(Cmd::Run {
            config,
            daemon,
            upgrade,
        }) => run(config, daemon, upgrade),
        Some(Cmd::Check { config }) => check(&config),
        Some(Cmd::Usage {
            config,
            since,
            until,
            group_by,
            format,
        }) => {
            let args = usage::Args {
                since,
                until,
                group_by,
                format,
                page: None,
            };
            with_config(&config, "usage", |cfg| usage::report(cfg, &args))
        }
        Some(Cmd::Route {
            config,
            model,
            key,
            region,
        }) => {
            let q = tollgate::balance::explain::Query { model, key, region };
            with_config(&config, "route", |cfg| {
                tollgate::balance::explain::explain(cfg, &q)
            })
        }
        Some(Cmd::HashKey { key }) => hash_key(key),
        Some(Cmd::Mock {
            listen,
            threads,
            settings,
        }) => {
            init_logging("warn");
            let ran = server::run_mock(&listen, threads.max(1), settings);
            finish(ran.map(|()| String::new()), "tollgate mock")
        }
    }
}

/// `tollgate check`: the config's totals, or every error.
fn check(config: &str) -> ExitCode {
    match load(config) {
        Ok(c) => {
            println!(
                "{config}: ok ({} backends, {} routes, {} keys)",
                c.backends.len(),
                c.routes.len(),
                c.keys.len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// A subcommand that reads the config and prints a report.
fn with_config<E: std::fmt::Display>(
    config: &str,
    name: &str,
    report: impl FnOnce(&Config) -> Result<String, E>,
) -> ExitCode {
    match load(config) {
        Ok(cfg) => finish(report(&cfg), &format!("tollgate {name}")),
        Err(code) => code,
    }
}

/// Prints the output, or the error after `prefix`, with the exit code that goes with it.
fn finish<E: std::fmt::Display>(r: Result<String, E>, prefix: &str) -> ExitCode {
    match r {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{prefix}: {e}");
            ExitCode::from(1)
        }
    }
}

/// `tollgate hash-key`: the key's SHA-256, the key given or read from stdin.
fn hash_key(key: Option<String>) -> ExitCode {
    let key = match key {
        Some(k) => k,
        None => {
            let mut s = String::new();
            if std::io::stdin().read_line(&mut s).is_err() {
                return ExitCode::from(1);
            }
            s.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    println!("{}", tollgate::auth::hash_key(&key));
    ExitCode::SUCCESS
}

/// Runs the gateway until it is stopped.
fn run(config: String, daemon: bool, upgrade: bool) -> ExitCode {
    let (cfg, version) = match Config::load_versioned(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    init_logging(&cfg.log.level);
    let flags = RunFlags {
        daemon,
        upgrade,
        // Absolute: a daemon runs from `/`, and reloads re-read this path (symlinks are not
        // resolved, so a swapped link is followed).
        path: std::path::absolute(&config)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(config),
        version,
    };
    finish(server::run(cfg, flags).map(|()| String::new()), "tollgate")
}
