//! Commit-to-delivery latency at a steady 5,000 rows/s: a writer commits 50
//! rows every 10 ms, each stamped with its commit time; a consumer notes when
//! each arrives. Consumer receipt comes after the producer's ack, so the
//! figure is an upper bound of commit-to-ack.
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio::sync::watch;

use crate::cdc::{CdcBenchArgs, pipeline_file};
use sluice::plugin::{PluginEngine, PluginHost};
use sluice::topology::run_pipeline;
use sluice_testkit::LocalStack;

const SECONDS: u64 = 10;
const ROWS_PER_TICK: u64 = 50;
const TICK: Duration = Duration::from_millis(10);

pub async fn report(args: &CdcBenchArgs, stack: &LocalStack, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut db = Conn::from_url(stack.mysql_url()).await?;
    db.query_drop("CREATE TABLE bench.live (id BIGINT PRIMARY KEY, committed_us BIGINT)")
        .await?;
    let state = tempfile::tempdir()?;
    let mut file = pipeline_file(args, stack, state.path(), "bench.live", "never")?;
    let host = PluginHost::open(std::sync::Arc::new(PluginEngine::new()?), &file.plugin_dir)?;
    let pipeline = file.pipelines.remove(0);
    let (stop_tx, stop) = watch::channel(false);
    let state_dir = file.state_dir.clone();
    // The topic exists before the consumer subscribes: a group that joined
    // while its topic was unknown could wait for it past the 60 s warm-up.
    // Four partitions, as the broker gives a topic it creates on first produce.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", stack.kafka_brokers()).create()?;
    for result in admin
        .create_topics(&[NewTopic::new("bench.live", 4, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await?
    {
        result.map_err(|(topic, code)| anyhow::anyhow!("cannot create topic {topic}: {code}"))?;
    }
    let task = tokio::spawn(async move { run_pipeline(&pipeline, host, &state_dir, stop).await });
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", stack.kafka_brokers())
        .set("group.id", "bench-latency")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "5")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()?;
    consumer.subscribe(&["bench.live"])?;
    // Measure only once the pipeline streams (it has stored a position) and
    // the consumer has joined its group and sees the topic (a warm-up row
    // came through).
    while !state.path().join("bench.position.json").exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    db.query_drop(format!(
        "INSERT INTO bench.live VALUES (-1, {})",
        chrono::Utc::now().timestamp_micros()
    ))
    .await?;
    let warm_up = async { while consumer.recv().await.is_err() {} };
    tokio::time::timeout(Duration::from_secs(60), warm_up)
        .await
        .context("the warm-up row did not arrive within 60 s")?;
    let total = SECONDS * 1000 / TICK.as_millis() as u64 * ROWS_PER_TICK;
    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        for t in 0..total / ROWS_PER_TICK {
            tick.tick().await;
            let values: Vec<String> = (0..ROWS_PER_TICK)
                .map(|i| format!("({}, {})", t * ROWS_PER_TICK + i, chrono::Utc::now().timestamp_micros()))
                .collect();
            db.query_drop(format!("INSERT INTO bench.live VALUES {}", values.join(","))).await?;
        }
        anyhow::Ok(())
    });
    let mut latencies_ms = Vec::with_capacity(total as usize);
    let deadline = Instant::now() + Duration::from_secs(SECONDS + 60);
    while (latencies_ms.len() as u64) < total && Instant::now() < deadline {
        let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await else {
            continue;
        };
        let received = chrono::Utc::now().timestamp_micros();
        let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap_or(b"{}"))?;
        if let Some(committed) = value["after"]["committed_us"].as_i64() {
            latencies_ms.push((received - committed) as f64 / 1000.0);
        }
    }
    writer.await??;
    stop_tx.send(true)?;
    task.await??;
    anyhow::ensure!(
        latencies_ms.len() as u64 == total,
        "only {} of {total} rows arrived",
        latencies_ms.len()
    );
    latencies_ms.sort_by(f64::total_cmp);
    let at = |q: f64| latencies_ms[((latencies_ms.len() - 1) as f64 * q) as usize];
    writeln!(
        out,
        "latency at 5,000 rows/s for {SECONDS} s (row stamped before commit -> consumer receipt): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 100)",
        at(0.5),
        at(0.99),
        at(1.0)
    )?;
    Ok(())
}
