//! `sluice bench cdc`: MySQL -> pass-through plugin -> Kafka, as a binlog
//! stream of one large transaction and as a snapshot, beside the raw limits
//! measured in the same run on the same servers (reading and decoding the
//! binlog or the table with mysql_async alone, producing to the broker with
//! rdkafka alone) and the common Python pipeline; plus peak memory and
//! commit-to-consumer latency at a steady 5,000 rows/s.
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use mysql_async::binlog::events::EventData;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn};

use tokio::sync::watch;

use crate::rows::{host_records, host_schema};
use sluice::formats::debezium as encode;
use sluice::mysql::{BinlogCheckpoint, current_position};
use sluice::pipeline::PipelineFile;
use sluice::plugin::{PluginEngine, PluginHost};
use sluice::positions::PositionStore;
use sluice::sinks::kafka::delivery::{Acks, Outgoing, enqueue_all};
use sluice::sinks::kafka::producer;
use sluice::sources::SourcePosition;
use sluice::telemetry::Telemetry;
use sluice::topology::{BATCH_RECORDS, MAX_IN_FLIGHT, run_pipeline, supervise};
use sluice_testkit::{LocalStack, Pipeline};

#[derive(Debug, Args)]
pub struct CdcBenchArgs {
    /// Rows written to the binlog and streamed.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Skip the Python baseline and the latency run (for quick iterations).
    #[arg(long)]
    pub sluice_only: bool,
    /// Rounds of the bare and Sluice measurements, each round measuring all of
    /// them back to back; the report gives medians (a 2-core machine's
    /// rates move by a third between rounds).
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// Directory holding passthrough.wasm.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/target/wasm32-wasip2/release"))]
    pub plugins: PathBuf,
}

pub fn run(args: &CdcBenchArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let stack = LocalStack::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args, &stack, out))
}

async fn bench(args: &CdcBenchArgs, stack: &LocalStack, out: &mut dyn Write) -> anyhow::Result<i32> {
    let rows = args.rows;
    let mut db = Conn::from_url(stack.mysql_url()).await?;
    db.query_drop(
        "CREATE DATABASE bench; USE bench;
         CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(64), name VARCHAR(64), amount DECIMAL(12,2), created_at DATETIME(6))",
    )
    .await?;
    let start = current_position(&mut db).await?;
    let started = Instant::now();
    // One transaction: the stream must pass it through without holding it.
    db.query_drop(format!(
        "INSERT INTO users SELECT seq, CONCAT('  User', seq, '@Example.COM '), CONCAT('user  number ', seq), \
         (seq % 10000) + 0.25, '2026-11-26 12:34:56.000001' FROM seq_1_to_{rows}"
    ))
    .await?;
    let insert_rate = rows as f64 / started.elapsed().as_secs_f64();
    let end = current_position(&mut db).await?;
    writeln!(
        out,
        "MySQL -> Kafka, {rows} rows of 5 columns (MariaDB 10.11 private, Tansu memory storage), one pipeline"
    )?;
    writeln!(
        out,
        "{:<58} {:>12}",
        "(setup) one INSERT … SELECT transaction",
        format!("{insert_rate:.0} rows/s")
    )?;

    let mut trials = Vec::new();
    let (mut message_bytes, mut stream_rss) = (0, 0.0);
    for trial in 1..=args.trials.max(1) {
        // Every run that produces gets an empty broker: Tansu's memory
        // storage keeps every message, and no run should be measured against
        // what the runs before it stored. Each Sluice run sits next to the
        // bare runs its ratio uses: a machine's speed drifts within a round.
        stack.restart_kafka();
        // Metrics on (served, scraped every second) and off, in alternating
        // order: the machine's drift favours neither.
        let (mut stream, mut unobserved) = (None, None);
        for metrics in [trial % 2 == 0, trial % 2 == 1] {
            let measured = sluice_stream(args, stack, &start, &end, metrics).await?;
            *if metrics { &mut stream } else { &mut unobserved } = Some(measured);
            stack.restart_kafka();
        }
        let (stream, unobserved) = (stream.expect("measured"), unobserved.expect("measured"));
        // Taken before any bare run: the bare produce below builds its
        // million messages up front, and the heap keeps much of that memory
        // afterwards.
        if trial == 1 {
            stream_rss = peak_rss_mb();
        }
        let produce;
        (produce, message_bytes) = bare_produce(stack.kafka_brokers(), rows).await?;
        let binlog = bare_binlog(stack.mysql_url(), &start, &end, rows).await?;
        let select = bare_select(stack.mysql_url(), rows).await?;
        stack.restart_kafka();
        let snapshot = sluice_snapshot(args, stack).await?;
        writeln!(
            out,
            "trial {trial}: binlog {binlog:.0}, SELECT {select:.0}, produce {:.0}, sluice stream {:.0} (metrics off {:.0}), \
             sluice snapshot {:.0} (per s); CPU per row: stream {:.2} µs, snapshot {:.2} µs, produce {:.2} µs",
            produce.rate, stream.rate, unobserved.rate, snapshot.rate, stream.cpu_us, snapshot.cpu_us, produce.cpu_us
        )?;
        trials.push(Trial {
            binlog,
            select,
            produce,
            stream,
            unobserved,
            snapshot,
        });
    }
    let python_rate = if args.sluice_only {
        Err(anyhow::anyhow!("skipped (--sluice-only)"))
    } else {
        stack.restart_kafka();
        crate::python::cdc_rate(stack, &start, &end, rows)
    };

    let median = |figure: fn(&_) -> f64| crate::median(&trials, figure);
    let line = |out: &mut dyn Write, what: &str, rate: f64, unit: &str| writeln!(out, "{what:<58} {rate:>12.0} {unit}");
    writeln!(out, "medians of {} trials:", trials.len())?;
    line(out, "bare binlog read + row decode (mysql_async)", median(|t| t.binlog), "rows/s")?;
    line(
        out,
        "bare SELECT in 1000-row key chunks + decode (mysql_async)",
        median(|t| t.select),
        "rows/s",
    )?;
    line(
        out,
        &format!("bare produce, pipeline messages of {message_bytes} bytes (rdkafka)"),
        median(|t| t.produce.rate),
        "msg/s",
    )?;
    let stream_rate = median(|t| t.stream.rate);
    line(out, "sluice: binlog -> passthrough.wasm -> Kafka, acked", stream_rate, "rows/s")?;
    line(
        out,
        "sluice: the same with metrics off (http = \"off\")",
        median(|t| t.unobserved.rate),
        "rows/s",
    )?;
    line(
        out,
        "sluice: snapshot -> passthrough.wasm -> Kafka, acked",
        median(|t| t.snapshot.rate),
        "rows/s",
    )?;
    // Each trial's ratio pairs rates measured a few seconds apart.
    writeln!(
        out,
        "binlog stream / slower raw limit = {:.2} (median of the trials' ratios; target >= 0.70)",
        median(|t| t.stream.rate / t.binlog.min(t.produce.rate))
    )?;
    writeln!(
        out,
        "snapshot / slower raw limit      = {:.2} (median of the trials' ratios; target >= 0.70)",
        median(|t| t.snapshot.rate / t.select.min(t.produce.rate))
    )?;
    writeln!(
        out,
        "metrics on (scraped every 1 s) / off = {:.3} (median of the trials' ratios; target within 3%); \
         CPU per row on {:.2} µs, off {:.2} µs",
        median(|t| t.stream.rate / t.unobserved.rate),
        median(|t| t.stream.cpu_us),
        median(|t| t.unobserved.cpu_us)
    )?;
    // Rates move with this shared machine's load; CPU time per row shows
    // how much of the stream's cost is producing, which the bare run pays too.
    writeln!(
        out,
        "CPU time of this process per row: stream {:.2} µs, snapshot {:.2} µs, bare produce {:.2} µs (medians)",
        median(|t| t.stream.cpu_us),
        median(|t| t.snapshot.cpu_us),
        median(|t| t.produce.cpu_us)
    )?;
    writeln!(
        out,
        "peak RSS while streaming the {rows}-row transaction: {stream_rss:.0} MB (target < 300)"
    )?;
    match python_rate {
        Ok(rate) => {
            line(out, "python-mysql-replication + kafka-python, same rows", rate, "rows/s")?;
            writeln!(out, "sluice binlog stream / Python = {:.1}x (target >= 10)", stream_rate / rate)?;
        }
        Err(e) => writeln!(out, "Python baseline not measured: {e:#}")?,
    }
    if !args.sluice_only {
        stack.restart_kafka();
        crate::latency::report(args, stack, out).await?;
    }
    Ok(0)
}

/// One round of measurements, rows (or messages) per second.
struct Trial {
    binlog: f64,
    select: f64,
    produce: Measured,
    /// The stream with metrics on, as `sluice run` serves them, and off.
    stream: Measured,
    unobserved: Measured,
    snapshot: Measured,
}

/// The process's peak resident memory so far (Linux's high-water mark).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

/// Reads the table as the snapshot does (key chunks, binary protocol) and
/// touches every value.
async fn bare_select(url: &str, rows: usize) -> anyhow::Result<f64> {
    let mut conn = Conn::from_url(url).await?;
    let started = Instant::now();
    let (mut after, mut read) = (0i64, 0);
    loop {
        let mut result = conn
            .exec_iter("SELECT * FROM bench.users WHERE id > ? ORDER BY id LIMIT 1000", (after,))
            .await?;
        let mut chunk = 0;
        while let Some(row) = result.next().await? {
            after = row.get::<i64, _>(0).context("id")?;
            std::hint::black_box(row.unwrap());
            chunk += 1;
        }
        read += chunk;
        if chunk < 1000 {
            break;
        }
    }
    anyhow::ensure!(read == rows, "read {read} of {rows} rows");
    Ok(read as f64 / started.elapsed().as_secs_f64())
}

/// Reads the binlog between two positions and decodes every row value.
async fn bare_binlog(url: &str, start: &BinlogCheckpoint, end: &BinlogCheckpoint, rows: usize) -> anyhow::Result<f64> {
    let conn = Conn::from_url(url).await?;
    let request = BinlogStreamRequest::new(9001)
        .with_filename(start.file.as_bytes())
        .with_pos(start.pos);
    let mut stream = conn.get_binlog_stream(request).await?;
    let started = Instant::now();
    let mut decoded = 0;
    while decoded < rows {
        let event = stream.next().await.context("binlog ended early")??;
        if let Some(EventData::RowsEvent(rows_event)) = event.read_data()? {
            let map = stream.get_tme(rows_event.table_id()).context("table map")?;
            for row in rows_event.rows(map) {
                let (_, after) = row?;
                let after = after.context("after image")?;
                std::hint::black_box((0..after.len()).filter(|&i| after.as_ref(i).is_some()).count());
                decoded += 1;
            }
        }
        if event.header().log_pos() as u64 >= end.pos {
            break;
        }
    }
    Ok(decoded as f64 / started.elapsed().as_secs_f64())
}

/// rdkafka's own limit for the pipeline's messages: what the pipeline would
/// produce for rows of the same shape (keys, envelopes and headers built
/// before the clock starts), handed over in the pipeline's batch size with as
/// many batches in flight as it allows and its producer settings. Returns
/// the rate and the mean message size.
async fn bare_produce(brokers: &str, rows: usize) -> anyhow::Result<(Measured, usize)> {
    let mut encoder = encode::MessageEncoder::new(encode::ValueFormat::Debezium, "bench");
    let now = chrono::Utc::now().timestamp_millis();
    let (schema, mut batches, mut bytes, mut dedup) = (host_schema(), Vec::new(), 0, String::new());
    for start in (0..rows).step_by(BATCH_RECORDS) {
        let records = host_records(&schema, start..rows.min(start + BATCH_RECORDS));
        let mut batch = Outgoing::with_capacity(records.len());
        for record in &records {
            let key = batch.write(|out| encoder.write_key(record, out));
            let payload = batch.write(|out| encoder.write_value(record, now, out));
            batch.push("bench.bare", key, payload, encode::headers(record, None, &mut dedup));
        }
        bytes += batch.payload_bytes();
        batches.push(batch);
    }
    let producer = producer(brokers, &Default::default())?;
    let (cpu, started) = (cpu_seconds(), Instant::now());
    let mut in_flight = std::collections::VecDeque::with_capacity(MAX_IN_FLIGHT);
    for mut batch in batches {
        if in_flight.len() == MAX_IN_FLIGHT {
            in_flight.pop_front().map(Acks::wait).expect("a batch in flight").await?;
        }
        in_flight.push_back(enqueue_all(&producer, &mut batch).await?.0);
    }
    for batch in in_flight {
        batch.wait().await?;
    }
    let measured = Measured::since(started, cpu, rows);
    Ok((measured, bytes / rows.max(1)))
}

/// The real pipeline, started at `start`, as `sluice run` runs it; timed
/// until it has stored the position `end`, i.e. until Kafka acknowledged
/// every row. With `metrics`, its metrics are served over HTTP and
/// scraped every second, as Prometheus would.
async fn sluice_stream(
    args: &CdcBenchArgs,
    stack: &LocalStack,
    start: &BinlogCheckpoint,
    end: &BinlogCheckpoint,
    metrics: bool,
) -> anyhow::Result<Measured> {
    let state = tempfile::tempdir()?;
    let mut file = pipeline_file(args, stack, state.path(), "bench.users", "never")?;
    let positions = PositionStore::new(state.path(), "bench");
    positions.save(&SourcePosition::Binlog(start.clone()))?;
    let host = PluginHost::open(std::sync::Arc::new(PluginEngine::new()?), &file.plugin_dir)?;
    let pipeline = file.pipelines.remove(0);
    let (stop_tx, stop) = watch::channel(false);
    let state_dir = file.state_dir.clone();
    let telemetry = Telemetry::new(metrics);
    let reports = telemetry.pipeline("bench", "mysql-binlog", "kafka");
    let scraper = if metrics {
        let address = sluice::telemetry::serve("127.0.0.1:0", telemetry.clone()).await?.to_string();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let (code, body) = sluice::telemetry::get(&address, "/metrics").await.expect("a scrape");
                assert!(code == 200 && !body.is_empty());
            }
        }))
    } else {
        None
    };
    let (cpu, started) = (cpu_seconds(), Instant::now());
    let task = tokio::spawn(async move { supervise(&pipeline, host, &state_dir, stop, &reports).await });
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let reached = |p: &BinlogCheckpoint| p.file > end.file || p.file == end.file && p.pos >= end.pos;
        if matches!(positions.load::<SourcePosition>()?, Some(SourcePosition::Binlog(p)) if reached(&p)) {
            break;
        }
        anyhow::ensure!(!task.is_finished(), "the pipeline stopped early: {:?}", task.await);
    }
    let measured = Measured::since(started, cpu, args.rows);
    stop_tx.send(true)?;
    task.await??;
    if let Some(scraper) = scraper {
        scraper.abort();
    }
    Ok(measured)
}

/// A snapshot-only run of the same table: timed until it returns, which it
/// does once every row is acknowledged.
async fn sluice_snapshot(args: &CdcBenchArgs, stack: &LocalStack) -> anyhow::Result<Measured> {
    let state = tempfile::tempdir()?;
    let mut file = pipeline_file(args, stack, state.path(), "bench.users", "snapshot-only")?;
    let host = PluginHost::open(std::sync::Arc::new(PluginEngine::new()?), &file.plugin_dir)?;
    let pipeline = file.pipelines.remove(0);
    let (_stop_tx, stop) = watch::channel(false);
    let state_dir = file.state_dir.clone();
    let (cpu, started) = (cpu_seconds(), Instant::now());
    // A task of the runtime, as `sluice run` runs each pipeline: run on this
    // (non-worker) thread instead, it freed every record the reader had
    // allocated on a worker across threads (5% of the snapshot's CPU).
    tokio::spawn(async move { run_pipeline(&pipeline, host, &state_dir, stop).await }).await??;
    Ok(Measured::since(started, cpu, args.rows))
}

/// A one-pipeline file: `table` through the pass-through plugin to Kafka.
pub(super) fn pipeline_file(
    args: &CdcBenchArgs,
    stack: &LocalStack,
    state: &std::path::Path,
    table: &str,
    snapshot: &str,
) -> anyhow::Result<PipelineFile> {
    let pipeline = Pipeline::new("bench")
        .binlog(&[table], 9002, &format!("snapshot = \"{snapshot}\""))
        .kafka_sink("")
        .dead_letter("bench.dlq")
        .plugin("passthrough", "");
    let text = stack.pipeline_text(&args.plugins, Some(state), &pipeline.toml());
    Ok(PipelineFile::parse(&text, |_| None)?)
}

/// A rate, and the CPU time this process spent per row meanwhile (on every
/// thread: librdkafka's, the runtime's, the plugins').
#[derive(Clone, Copy)]
struct Measured {
    rate: f64,
    cpu_us: f64,
}

impl Measured {
    fn since(started: Instant, cpu: f64, rows: usize) -> Measured {
        let rows = rows.max(1) as f64;
        Measured {
            rate: rows / started.elapsed().as_secs_f64(),
            cpu_us: (cpu_seconds() - cpu) * 1e6 / rows,
        }
    }
}

/// User plus system time of this process so far, from /proc/self/stat
/// (fields 14 and 15, in the kernel's fixed 100 Hz user-visible ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
