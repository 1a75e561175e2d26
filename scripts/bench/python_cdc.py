"""The common Python practice for MySQL -> Kafka, as the CDC benchmark's
baseline: python-mysql-replication reads the binlog, kafka-python produces
one JSON message per row. Prints rows/s for the rows between two positions.

usage: python_cdc.py MYSQL_PORT BROKERS FILE START_POS END_POS ROWS
"""
import json
import sys
import time

from kafka import KafkaProducer
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import WriteRowsEvent

port, brokers, log_file, start, end, rows = sys.argv[1:7]
start, end, rows = int(start), int(end), int(rows)

producer = KafkaProducer(bootstrap_servers=brokers, linger_ms=5, batch_size=256 * 1024,
                         value_serializer=lambda v: json.dumps(v, default=str).encode())
stream = BinLogStreamReader(
    connection_settings={"host": "127.0.0.1", "port": int(port), "user": "root", "passwd": ""},
    server_id=9100, log_file=log_file, log_pos=start, resume_stream=True, blocking=True,
    only_events=[WriteRowsEvent],
)
began = time.monotonic()
done = 0
for event in stream:
    for row in event.rows:
        producer.send("bench.python", key=str(row["values"]["id"]).encode(), value=row["values"])
        done += 1
    if done >= rows or stream.log_pos >= end:
        break
producer.flush()
took = time.monotonic() - began
stream.close()
print(f"{done / took:.0f}")
