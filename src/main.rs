use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hubcap::cli::file::{ConfigFileError, Effective, Parsed};
use hubcap::cli::{Command, ConfigError, LogFormat};
use hubcap::observe::progress::View;
use hubcap::run::{exit, RunError};
use hubcap::tools::audit::AuditError;
use hubcap::tools::demo::DemoFormat;
use hubcap::tools::repair::RepairError;
use tracing_subscriber::EnvFilter;

/// Threads for blocking work (file I/O), at most.
const BLOCKING_THREADS: usize = 32;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A closed pipe ends a command quietly, as it does `cat` (`hubcap audit … | head -1`): Rust
    // ignores SIGPIPE, and then every print to a closed stdout or stderr panics. `run` ignores
    // it again below.
    set_sigpipe(libc::SIG_DFL);
    let Parsed { cli, effective } = match hubcap::cli::file::parse(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(ConfigFileError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("hubcap: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    if let Command::Run(_) = cli.command {
        // An archiver keeps archiving when whoever read its log went away: its log lines are
        // then dropped (the log writers ignore write errors) and its checkpoints still say
        // where it stands.
        set_sigpipe(libc::SIG_IGN);
    }
    let logging = std::env::var("HUBCAP_LOG").unwrap_or_default();
    let mut filter = EnvFilter::try_new(&logging)
        .ok()
        .filter(|_| !logging.is_empty())
        .unwrap_or_else(|| EnvFilter::new("info,librdkafka=warn,rdkafka=warn"));
    // delta_kernel logs each snapshot and scan at info, lines per commit not worth reading, and
    // each error it returns again at error, with its backtrace and the whole log segment: hubcap
    // reports the errors it is given, in one line. Its lines show when HUBCAP_LOG asks for them
    // by name or asks for debug.
    let verbose = ["delta_kernel", "debug", "trace"];
    if !verbose.iter().any(|v| logging.contains(v)) {
        for quiet in ["delta_kernel=off", "delta_kernel_default_engine=off"] {
            filter = filter.add_directive(quiet.parse().expect("a valid directive"));
        }
    }
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Hides --once's progress bars while a line is written.
        .with_writer(hubcap::observe::progress::LogWriter);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // File I/O runs on blocking threads (the local store, object_store's local files): at
        // 256 partitions closing their files at once, tokio's default of 512 threads cost tens
        // of MiB of stacks and allocator heaps for no speed a disk can give.
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubcap: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.command, effective, cli.log_format)) {
        Ok(()) => ExitCode::from(exit::DONE),
        Err(e) => {
            let text = error_text(&e);
            if cli.log_format == LogFormat::Json {
                tracing::error!(error = text, "hubcap failed");
            } else {
                // Not eprintln!: it panics when stderr is closed.
                let _ = writeln!(std::io::stderr(), "hubcap: {text}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// How the process takes SIGPIPE: `SIG_DFL` (a closed pipe ends it, exit 141 in a shell) or
/// `SIG_IGN` (a write to it fails with EPIPE).
fn set_sigpipe(action: libc::sighandler_t) {
    #[cfg(unix)]
    // SAFETY: signal(2) with a plain disposition installs no handler of ours; nothing else in
    // the process changes SIGPIPE's.
    unsafe {
        libc::signal(libc::SIGPIPE, action);
    }
}

/// An error and its causes, each said once: a message that already quotes its cause (most of
/// hubcap's do, to place it in a sentence) is not followed by it again.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1).map(|c| c.to_string()) {
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// The exit code of a failed command (see `hubcap::run::exit`).
fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(run) = e.downcast_ref::<RunError>() {
        run.exit_code()
    } else if let Some(replay) = e.downcast_ref::<hubcap::tools::replay::ReplayError>() {
        replay.exit_code()
    } else if e.is::<ConfigError>()
        || e.is::<hubcap::tools::demo::DemoError>()
        || e.downcast_ref::<AuditError>()
            .is_some_and(AuditError::is_usage)
        || e.downcast_ref::<RepairError>()
            .is_some_and(RepairError::is_usage)
        || e.downcast_ref::<hubcap::tools::inspect::InspectError>()
            .is_some_and(hubcap::tools::inspect::InspectError::is_usage)
    {
        exit::USAGE
    } else {
        exit::FAILED
    }
}

async fn dispatch(
    command: Command,
    effective: Effective,
    log_format: LogFormat,
) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => {
            if let Some(file) = effective.file() {
                tracing::info!(file = %file.display(), "read settings from the configuration file");
            }
            let quiet = args.quiet;
            let cfg = args.validate()?;
            let once = cfg.once;
            // Bars only where a person watches them, and not between JSON lines.
            let view = if std::io::stderr().is_terminal() && log_format == LogFormat::Text && !quiet
            {
                View::Bars
            } else {
                View::Log
            };
            let stop = Arc::new(AtomicBool::new(false));
            tokio::spawn(stop_on_signal(stop.clone()));
            let summary = hubcap::run::run(cfg, stop, view).await?;
            // Not println!: it panics on a closed pipe, and the run is done and checkpointed.
            let _ = if once {
                writeln!(std::io::stdout(), "{}", summary.table())
            } else {
                writeln!(std::io::stderr(), "{}", summary.table())
            };
            Ok(())
        }
        Command::Config(args) => {
            // Printed even when invalid: the error below is about what was printed.
            print!("{}", effective.to_toml());
            args.validate()?;
            Ok(())
        }
        Command::Audit(args) => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            let report = hubcap::tools::audit::audit(&args, &mut out).await?;
            std::io::Write::flush(&mut out)?;
            anyhow::ensure!(
                report.clean(),
                "the archive is not clean (see the report above)"
            );
            Ok(())
        }
        Command::Repair(args) => {
            let report = hubcap::tools::repair::repair(&args).await?;
            if args.audit.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.text());
            }
            anyhow::ensure!(
                report.unrecoverable.is_empty(),
                "{} missing files cannot be restored from Kafka (see the report above)",
                report.unrecoverable.len()
            );
            Ok(())
        }
        Command::Replay(args) => {
            // Bars as for `run`: where a person watches them, and not between JSON lines.
            let view = if std::io::stderr().is_terminal()
                && log_format == LogFormat::Text
                && !args.quiet
            {
                View::Bars
            } else {
                View::Log
            };
            let summary = hubcap::tools::replay::replay_shown(&args, view).await?;
            print!("{}", summary.table());
            anyhow::ensure!(
                summary.clean(),
                "the target topic differs from the archive (see the report above)"
            );
            Ok(())
        }
        Command::Inspect(args) => {
            let mut out = std::io::BufWriter::new(std::io::stdout());
            hubcap::tools::inspect::inspect(&args, &mut out).await?;
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
        Command::Demo(args) => {
            let (output, format) = (args.output.clone(), args.format);
            let summary = hubcap::tools::demo::demo(args).await?;
            println!("\n{}\n", summary.table());
            print!("{}", demo_hints(&output, &summary.output, format));
            Ok(())
        }
    }
}

/// What the demo wrote and how to read it back.
fn demo_hints(output: &str, resolved: &str, format: DemoFormat) -> String {
    let topic = hubcap::tools::demo::DEMO_TOPIC;
    let local = !output.contains("://");
    let mut s = String::new();
    match format {
        DemoFormat::Avro => {
            s += &format!(
                "The files are in {output} ({resolved}), laid out like Event Hubs Capture:\n"
            );
            s += "  {Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}-{Offset}.avro\n";
        }
        DemoFormat::Parquet => {
            s += &format!("The files are in {output} ({resolved}), in the data-lake layout:\n");
            s += &format!("  {}.parquet\n", hubcap::tools::demo::LAKE_TEMPLATE);
        }
    }
    s += &format!("and each partition's checkpoint is under {output}/_checkpoints/.\n");
    s += &format!("Look inside with `hubcap inspect {output} --limit 3` (or --stats), and check that every offset is in exactly one file with `hubcap audit --output {output}`.\n");
    if local {
        match format {
            DemoFormat::Avro => {
                s += "Read them with any Avro reader, for example fastavro (pip install fastavro):\n";
                s += &format!("  python3 -c 'import fastavro,glob; r=[x for f in sorted(glob.glob(\"{output}/demo/**/*.avro\", recursive=True)) for x in fastavro.reader(open(f,\"rb\"))]; print(len(r), \"events; first:\", r[0])'\n");
            }
            DemoFormat::Parquet => {
                s +=
                    "Query them with DuckDB (pip install duckdb), partition and date as columns:\n";
                s += &format!(
                    r#"  python3 -c "import duckdb; duckdb.sql(\"SELECT partition, date, count(*) AS events, max(EnqueuedTime) AS last FROM read_parquet('{output}/{topic}/**/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY ALL\").show()"
"#
                );
            }
        }
    }
    s
}

/// Sets `stop` on SIGINT or SIGTERM; the sources then flush open windows and checkpoint.
async fn stop_on_signal(stop: Arc<AtomicBool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping: flushing open windows and writing checkpoints");
    stop.store(true, Ordering::Relaxed);
}
