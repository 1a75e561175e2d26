"""The seed approach for Kafka -> MySQL as tutorials show it, as the sink
benchmark's baseline: a kafka-python consumer and mysql-connector-python,
one INSERT … ON DUPLICATE KEY UPDATE and one commit per message. Prints rows/s.

usage: python_sink.py MYSQL_PORT BROKERS TOPIC COUNT
"""
import json
import sys
import time

import mysql.connector
from kafka import KafkaConsumer

port, brokers, topic, count = sys.argv[1:5]
count = int(count)
db = mysql.connector.connect(host="127.0.0.1", port=int(port), user="root", password="", database="bench")
cursor = db.cursor()
consumer = KafkaConsumer(topic, bootstrap_servers=brokers, group_id="bench-python", auto_offset_reset="earliest",
                         enable_auto_commit=True)
done = 0
began = None
for message in consumer:
    if began is None:
        began = time.monotonic()
    row = json.loads(message.value)["after"]
    cursor.execute(
        "INSERT INTO python_accounts (id, email, name, amount, created_at) VALUES (%s, %s, %s, %s, %s) "
        "ON DUPLICATE KEY UPDATE email = VALUES(email), name = VALUES(name), amount = VALUES(amount), "
        "created_at = VALUES(created_at)",
        (row["id"], row["email"], row["name"], row["amount"], row["created_at"]),
    )
    db.commit()
    done += 1
    if done >= count:
        break
print(f"{done / (time.monotonic() - began):.0f}")
