#!/usr/bin/env python3
"""Publishes the messages it reads on stdin with the official Python client,
for interop/cmd/capture, which records the frames on the way.

Usage:

    capture_producer.py --url SERVICE_URL --topic TOPIC
                        --compression NONE|LZ4|ZLIB|ZSTD|SNAPPY --batched true|false

Each stdin line is one message: tab-separated payload, key (empty: none),
event time in ms (0: none), then any number of name=value properties.
Batched, all the messages go in one batch; otherwise each is a SEND of its
own. It prints the id of each message and exits 0 once all are receipted.
"""

import argparse
import sys
import threading

import pulsar


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--compression", default="NONE")
    ap.add_argument("--batched", default="false")
    args = ap.parse_args()
    compression = {
        "NONE": pulsar.CompressionType.NONE,
        "LZ4": pulsar.CompressionType.LZ4,
        "ZLIB": pulsar.CompressionType.ZLib,
        "ZSTD": pulsar.CompressionType.ZSTD,
        "SNAPPY": pulsar.CompressionType.SNAPPY,
    }[args.compression]
    batched = args.batched == "true"
    messages = [line.rstrip("\n").split("\t") for line in sys.stdin if line.strip()]

    client = pulsar.Client(args.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        producer = client.create_producer(
            args.topic,
            compression_type=compression,
            batching_enabled=batched,
            batching_max_messages=max(len(messages), 1),
            batching_max_publish_delay_ms=3_600_000,
        )
        done = threading.Semaphore(0)
        results = [None] * len(messages)

        def callback(i):
            def cb(res, msg_id):
                results[i] = (res, msg_id)
                done.release()
            return cb

        for i, m in enumerate(messages):
            kwargs = {}
            if m[1]:
                kwargs["partition_key"] = m[1]
            if int(m[2]):
                kwargs["event_timestamp"] = int(m[2])
            props = dict(p.split("=", 1) for p in m[3:])
            if props:
                kwargs["properties"] = props
            producer.send_async(m[0].encode("utf-8"), callback(i), **kwargs)
        producer.flush()
        for _ in messages:
            if not done.acquire(timeout=15):
                sys.exit("capture_producer: no receipt within 15 s")
        for res, msg_id in results:
            if res != pulsar.Result.Ok:
                sys.exit("capture_producer: send failed: %s" % res)
            print(msg_id)
        producer.close()
    finally:
        client.close()


if __name__ == "__main__":
    main()
