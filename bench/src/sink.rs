//! `sluice bench sink`: Kafka -> pass-through plugin -> MySQL, beside the raw
//! limits measured in the same run on the same servers: consuming the topic
//! with rdkafka alone, and multi-row upserts of the same rows into MariaDB
//! from one connection alone; and the tutorial Python consumer.
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio::sync::watch;

use sluice::pipeline::PipelineFile;
use sluice::plugin::{PluginEngine, PluginHost};
use sluice::sinks::kafka::delivery::{Outgoing, deliver_all};
use sluice::sinks::kafka::producer;
use sluice::topology::run_pipeline;
use sluice_testkit::{LocalStack, Pipeline};

#[derive(Debug, Args)]
pub struct SinkBenchArgs {
    /// Records produced to the topic and written to MySQL.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Records the Python baseline processes (it commits per message).
    #[arg(long, default_value_t = 20_000)]
    pub python_records: usize,
    /// Rounds of the bare and Sluice measurements, back to back in each
    /// round; the report gives medians (rates on a 2-core machine move by
    /// a fifth between runs).
    #[arg(long, default_value_t = 3)]
    pub trials: usize,
    /// Directory holding passthrough.wasm.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/target/wasm32-wasip2/release"))]
    pub plugins: PathBuf,
}

const TABLE: &str = "(id BIGINT PRIMARY KEY, email VARCHAR(64), name VARCHAR(64), amount DECIMAL(12,2), created_at DATETIME(6))";

pub fn run(args: &SinkBenchArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let stack = LocalStack::start();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args, &stack, out))
}

fn row(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": i, "email": format!("user{i}@example.com"), "name": format!("user number {i}"),
        "amount": format!("{}.25", i % 10000), "created_at": "2026-11-26 12:34:56.000001"
    })
}

async fn bench(args: &SinkBenchArgs, stack: &LocalStack, out: &mut dyn Write) -> anyhow::Result<i32> {
    let n = args.records;
    let mut db = Conn::from_url(stack.mysql_url()).await?;
    db.query_drop(format!(
        "CREATE DATABASE bench; CREATE TABLE bench.accounts {TABLE}; CREATE TABLE bench.bare_accounts {TABLE}; \
         CREATE TABLE bench.python_accounts {TABLE}"
    ))
    .await?;
    let producer = producer(stack.kafka_brokers(), &Default::default())?;
    let started = Instant::now();
    let mut messages = Outgoing::with_capacity(20_000);
    for chunk in (0..n).collect::<Vec<_>>().chunks(20_000) {
        for &i in chunk {
            let value = serde_json::json!({"op": "c", "before": null, "after": row(i), "source": {"db": "bench", "table": "accounts"}});
            let key = messages.write(|out| write!(out, "{{\"id\":{i}}}").is_ok());
            let payload = messages.write(|out| serde_json::to_writer(out, &value).is_ok());
            messages.push("bench.accounts", key, payload, Default::default());
        }
        deliver_all(&producer, &mut messages).await?;
    }
    writeln!(
        out,
        "Kafka -> MySQL, {n} Debezium envelopes of 5-column rows (Tansu memory storage, MariaDB 10.11 private)"
    )?;
    writeln!(
        out,
        "{:<58} {:>12.0} msg/s",
        "(setup) produce",
        n as f64 / started.elapsed().as_secs_f64()
    )?;

    let mut trials = Vec::new();
    for trial in 1..=args.trials.max(1) {
        // Each round starts from empty tables and new consumer groups.
        db.query_drop("TRUNCATE bench.accounts; TRUNCATE bench.bare_accounts").await?;
        let consume = bare_consume(stack.kafka_brokers(), n, &format!("bench-bare-{trial}")).await?;
        let upsert = bare_upsert(&mut db, n).await?;
        let sluice = sluice(args, stack, &mut db, &format!("bench{trial}")).await?;
        writeln!(
            out,
            "trial {trial}: consume {consume:.0} msg/s, upsert {upsert:.0} rows/s, sluice {sluice:.0} rows/s"
        )?;
        trials.push((consume, upsert, sluice));
    }
    let python_rate = crate::python::sink_rate(stack, "bench.accounts", args.python_records);

    let median = |figure: fn(&_) -> f64| crate::median(&trials, figure);
    let sluice_rate = median(|t| t.2);
    let line = |out: &mut dyn Write, what: &str, rate: f64, unit: &str| writeln!(out, "{what:<58} {rate:>12.0} {unit}");
    writeln!(out, "medians of {} trials:", trials.len())?;
    line(out, "bare consume in a group (rdkafka StreamConsumer)", median(|t| t.0), "msg/s")?;
    line(
        out,
        "bare multi-row upserts, 500 rows each, one connection",
        median(|t| t.1),
        "rows/s",
    )?;
    line(out, "sluice: Kafka -> passthrough.wasm -> MySQL, committed", sluice_rate, "rows/s")?;
    // Each trial's ratio pairs rates measured seconds apart.
    writeln!(
        out,
        "sluice / slower raw limit = {:.2} (median of the trials' ratios; target >= 0.70)",
        median(|(consume, upsert, sluice)| sluice / consume.min(*upsert))
    )?;
    match python_rate {
        Ok(rate) => {
            line(
                out,
                &format!("kafka-python + mysql-connector, commit per message ({})", args.python_records),
                rate,
                "rows/s",
            )?;
            writeln!(out, "sluice / Python = {:.1}x (target >= 20)", sluice_rate / rate)?;
        }
        Err(e) => writeln!(out, "Python baseline not measured: {e:#}")?,
    }
    Ok(0)
}

async fn bare_consume(brokers: &str, n: usize, group: &str) -> anyhow::Result<f64> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&["bench.accounts"])?;
    let mut stream = consumer.stream();
    // Timed from the first message: the group join is not the consume rate.
    let first = stream.next().await.ok_or_else(|| anyhow::anyhow!("no message"))??;
    std::hint::black_box(first.payload());
    let started = Instant::now();
    let mut read = 1;
    while read < n {
        let m = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
        std::hint::black_box(m.payload());
        read += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn bare_upsert(db: &mut Conn, n: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let mut tx = db.start_transaction(Default::default()).await?;
        for rows in chunk.chunks(500) {
            let mut params: Vec<mysql_async::Value> = Vec::new();
            for &i in rows {
                let r = row(i);
                for c in ["id", "email", "name", "amount", "created_at"] {
                    params.push(match &r[c] {
                        serde_json::Value::Number(x) => x.as_i64().unwrap_or(0).into(),
                        other => other.as_str().unwrap_or("").into(),
                    });
                }
            }
            let values = vec!["(?, ?, ?, ?, ?)"; rows.len()].join(", ");
            tx.exec_drop(
                format!(
                    "INSERT INTO bench.bare_accounts (id, email, name, amount, created_at) VALUES {values} ON DUPLICATE KEY UPDATE \
                     email = VALUES(email), name = VALUES(name), amount = VALUES(amount), created_at = VALUES(created_at)"
                ),
                params,
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// The real pipeline, timed from its first committed batch (the group join
/// is excluded, as for the bare consumer) until the offsets table holds all.
/// `name` is the pipeline's and its group's: offsets are stored per pipeline.
async fn sluice(args: &SinkBenchArgs, stack: &LocalStack, db: &mut Conn, name: &str) -> anyhow::Result<f64> {
    let pipeline = Pipeline::new(name)
        .kafka_source(&["bench.accounts"], &format!("group = \"{name}-sluice\""))
        .mysql_sink("")
        .dead_letter("bench.dlq")
        .plugin("passthrough", "");
    let text = stack.pipeline_text(&args.plugins, None, &pipeline.toml());
    let mut file = PipelineFile::parse(&text, |_| None)?;
    let host = PluginHost::open(std::sync::Arc::new(PluginEngine::new()?), &file.plugin_dir)?;
    let pipeline = file.pipelines.remove(0);
    let (stop_tx, stop) = watch::channel(false);
    let task = tokio::spawn(async move { run_pipeline(&pipeline, host, std::path::Path::new("."), stop).await });
    let applied = async |db: &mut Conn| -> anyhow::Result<i64> {
        let sum: Option<Option<i64>> = db
            .exec_first(
                "SELECT CAST(SUM(next_offset) AS SIGNED) FROM sluice.sluice_offsets WHERE pipeline = ?",
                (name,),
            )
            .await
            .ok()
            .flatten();
        Ok(sum.flatten().unwrap_or(0))
    };
    let mut started = None;
    let mut from = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        anyhow::ensure!(!task.is_finished(), "the pipeline stopped early: {:?}", task.await);
        let now = applied(db).await?;
        if started.is_none() && now > 0 {
            (started, from) = (Some(Instant::now()), now);
        }
        if now as usize >= args.records {
            break;
        }
    }
    let took = started.expect("started").elapsed();
    stop_tx.send(true)?;
    task.await??;
    Ok((args.records as i64 - from) as f64 / took.as_secs_f64())
}
