#!/usr/bin/env python3
"""Runs the official Python client (pulsar-client on PyPI, the C++ client
underneath) through six scenarios against one broker, pulsartest or a real
one, and checks what it received itself.

Usage:

    pulsar_interop.py --url SERVICE_URL --prefix TOPIC_PREFIX
                      [--partitions N] [--timeout SECONDS] [--only a,b]

The topics are persistent://public/default/PREFIX-<scenario>;
PREFIX-partitioned must already exist with N partitions (3 unless told):
the harness makes it.

stdout carries one JSON object per scenario and nothing else (the client
logs to stderr). The exit status is 0 when every scenario passed, 1 when
one failed, 2 on bad arguments and 3 when the whole run outlived --timeout
(60 s unless told). It is the same program as interop/java's PulsarInterop,
scenario for scenario.
"""

import argparse
import json
import logging
import os
import queue
import sys
import threading
import time

import pulsar

# How long any single receive, send or close may take.
WAIT_MS = 15_000

EXCLUSIVE_COUNT = 100
BATCHED_COUNT = 100
BATCH_SIZE = 10
PARTITIONED_COUNT = 30
SHARED_COUNT = 100
KEY_SHARED_COUNT = 100
KEYS = 20
READER_COUNT = 20

SCENARIOS = ["exclusive", "batched", "partitioned", "shared", "key_shared", "reader"]


class CheckFailed(Exception):
    """A failed check: the message says what was expected and what came."""


def check(ok, fmt, *args):
    if not ok:
        raise CheckFailed(fmt % args)


_out_lock = threading.Lock()


def emit(result):
    with _out_lock:
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


def new_result(scenario, topic):
    return {"client": "python", "scenario": scenario, "ok": False, "topic": topic}


def payload(scenario, i):
    return ("%s-%d" % (scenario, i)).encode()


def text(msg):
    return msg.data().decode("utf-8", "replace")


def index_of(scenario, msg):
    """The index i of a payload "scenario-i", or -1."""
    s = text(msg)
    head = scenario + "-"
    if not s.startswith(head):
        return -1
    try:
        return int(s[len(head):])
    except ValueError:
        return -1


def id_tuple(mid):
    return (mid.partition(), mid.ledger_id(), mid.entry_id(), mid.batch_index())


def fmt_id(mid):
    return "%d:%d:%d:%d" % (mid.ledger_id(), mid.entry_id(), mid.partition(), mid.batch_index())


def same_id(a, b):
    return id_tuple(a) == id_tuple(b)


def distinct_entries(ids):
    return len({(m.partition(), m.ledger_id(), m.entry_id()) for m in ids})


class Interop:
    def __init__(self, client, prefix, partitions):
        self.client = client
        self.prefix = prefix
        self.partitions = partitions

    def topic(self, scenario):
        return "persistent://public/default/%s-%s" % (self.prefix, scenario.replace("_", "-"))

    # ---- helpers ----

    def consumer(self, topic, sub, ctype, queue_size=1000, listener=None):
        return self.client.subscribe(
            topic, sub,
            consumer_type=ctype,
            initial_position=pulsar.InitialPosition.Earliest,
            receiver_queue_size=queue_size,
            message_listener=listener,
        )

    def producer(self, topic, **kw):
        kw.setdefault("batching_enabled", False)
        return self.client.create_producer(topic, send_timeout_millis=WAIT_MS, **kw)

    def receive_in_order(self, c, scenario, n, ids, r):
        """Receives n messages from c, checks each is the next payload of
        the scenario with the id of its receipt and no redelivery, and
        acknowledges it."""
        out = []
        for i in range(n):
            try:
                m = c.receive(timeout_millis=WAIT_MS)
            except pulsar.Timeout:
                raise CheckFailed("received %d of %d messages, then nothing for %d ms" % (i, n, WAIT_MS))
            check(m.data() == payload(scenario, i), "message %d is %s, want %s-%d", i, text(m), scenario, i)
            check(same_id(m.message_id(), ids[i]), "message %d came with id %s, its receipt said %s",
                  i, fmt_id(m.message_id()), fmt_id(ids[i]))
            check(m.redelivery_count() == 0, "message %d redelivered (count %d)", i, m.redelivery_count())
            out.append(m)
            c.acknowledge(m)
        r["received"] = n
        r["acked"] = n
        return out

    def ack_check(self, topic, sub, ctype, r):
        """Checks that the acknowledgements took: with every consumer of sub
        closed (which flushes its acks), a new message is sent, and a new
        consumer of sub must get it first, not anything acknowledged
        before."""
        p = self.producer(topic)
        p.send(b"sentinel", partition_key="sentinel")
        p.close()
        c = self.consumer(topic, sub, ctype)
        try:
            m = c.receive(timeout_millis=WAIT_MS)
        except pulsar.Timeout:
            raise CheckFailed("ack check: a new consumer of %s got nothing within %d ms" % (sub, WAIT_MS))
        check(m.data() == b"sentinel", "ack check: a new consumer of %s got %s (redelivery count %d) before the new message",
              sub, text(m), m.redelivery_count())
        c.acknowledge(m)
        c.close()
        r["ackChecked"] = True

    @staticmethod
    def listening(q, which):
        def on_message(consumer, msg):
            consumer.acknowledge(msg)
            q.put((which, msg))
        return on_message

    @staticmethod
    def drain(q, n):
        out = []
        while len(out) < n:
            try:
                out.append(q.get(timeout=WAIT_MS / 1000))
            except queue.Empty:
                raise CheckFailed("received %d of %d messages, then nothing for %d ms" % (len(out), n, WAIT_MS))
        return out

    # ---- the scenarios ----

    def exclusive(self, r):
        """(a) An unbatched producer and an Exclusive consumer."""
        topic, sub, n = self.topic("exclusive"), "sub-exclusive", EXCLUSIVE_COUNT
        c = self.consumer(topic, sub, pulsar.ConsumerType.Exclusive)
        p = self.producer(topic)
        ids = [p.send(payload("exclusive", i), properties={"index": str(i)}) for i in range(n)]
        for i, mid in enumerate(ids):
            check(mid.batch_index() < 0, "receipt %d is %s, a batch position, with batching off", i, fmt_id(mid))
            if i > 0:
                check(id_tuple(ids[i - 1]) < id_tuple(mid), "receipt %d (%s) does not come after %s",
                      i, fmt_id(mid), fmt_id(ids[i - 1]))
        r["produced"] = n
        r["entries"] = distinct_entries(ids)
        got = self.receive_in_order(c, "exclusive", n, ids, r)
        for i, m in enumerate(got):
            check(m.properties().get("index") == str(i), "message %d has properties %s", i, m.properties())
        p.close()
        c.close()
        self.ack_check(topic, sub, pulsar.ConsumerType.Exclusive, r)

    def batched(self, r):
        """(b) A batching producer, 10 messages a batch, and an Exclusive consumer."""
        topic, sub, n = self.topic("batched"), "sub-batched", BATCHED_COUNT
        c = self.consumer(topic, sub, pulsar.ConsumerType.Exclusive)
        # The batch is sent when it holds BATCH_SIZE messages, or on flush:
        # the delay is long enough never to cut one short.
        p = self.producer(topic, batching_enabled=True, batching_max_messages=BATCH_SIZE,
                          batching_max_publish_delay_ms=10_000)
        ids = [None] * n
        errors = []
        done = threading.Semaphore(0)

        def sent(i):
            def callback(res, mid):
                if res != pulsar.Result.Ok:
                    errors.append("send %d: %s" % (i, res))
                ids[i] = mid
                done.release()
            return callback

        for i in range(n):
            p.send_async(payload("batched", i), sent(i))
        p.flush()
        deadline = time.monotonic() + WAIT_MS / 1000
        for i in range(n):
            check(done.acquire(timeout=max(0.0, deadline - time.monotonic())),
                  "%d of %d send receipts within %d ms", i, n, WAIT_MS)
        check(not errors, "%s", "; ".join(errors))
        for i, mid in enumerate(ids):
            check(mid.batch_index() == i % BATCH_SIZE, "receipt %d is %s, want batch index %d",
                  i, fmt_id(mid), i % BATCH_SIZE)
        entries = distinct_entries(ids)
        check(entries == n // BATCH_SIZE, "the %d messages went in %d entries, want %d batches", n, entries, n // BATCH_SIZE)
        r["produced"] = n
        r["entries"] = entries
        self.receive_in_order(c, "batched", n, ids, r)
        p.close()
        c.close()
        self.ack_check(topic, sub, pulsar.ConsumerType.Exclusive, r)

    def partitioned(self, r):
        """(c) A partitioned topic: the partitions the broker lists,
        round-robin routing, and one consumer of all partitions, each
        partition in order."""
        topic, sub, n, k = self.topic("partitioned"), "sub-partitioned", PARTITIONED_COUNT, self.partitions
        parts = self.client.get_topic_partitions(topic)
        want = ["%s-partition-%d" % (topic, i) for i in range(k)]
        check(parts == want, "the partitions of %s are %s, want %s", topic, parts, want)
        r["partitions"] = len(parts)
        c = self.consumer(topic, sub, pulsar.ConsumerType.Exclusive)
        p = self.producer(topic, message_routing_mode=pulsar.PartitionsRoutingMode.RoundRobinDistribution)
        ids = [p.send(payload("partitioned", i)) for i in range(n)]
        first = ids[0].partition()
        per = [0] * k
        for i, mid in enumerate(ids):
            check(mid.partition() == (first + i) % k, "message %d went to partition %d, want %d (round-robin from %d)",
                  i, mid.partition(), (first + i) % k, first)
            per[mid.partition()] += 1
        r["produced"] = n
        r["perPartition"] = per
        last = [-1] * k
        seen = set()
        for j in range(n):
            try:
                m = c.receive(timeout_millis=WAIT_MS)
            except pulsar.Timeout:
                raise CheckFailed("received %d of %d messages, then nothing for %d ms" % (j, n, WAIT_MS))
            i = index_of("partitioned", m)
            check(0 <= i < n and i not in seen, "unexpected or repeated message %s", text(m))
            seen.add(i)
            mid = m.message_id()
            part = mid.partition()
            check(same_id(mid, ids[i]), "message %d came with id %s, its receipt said %s", i, fmt_id(mid), fmt_id(ids[i]))
            check(m.topic_name() == want[part], "message %d came from %s, want %s", i, m.topic_name(), want[part])
            check(i > last[part], "partition %d delivered message %d after %d", part, i, last[part])
            last[part] = i
            c.acknowledge(m)
        r["received"] = n
        r["acked"] = n
        p.close()
        c.close()
        self.ack_check(topic, sub, pulsar.ConsumerType.Exclusive, r)

    def shared(self, r):
        """(d) A Shared subscription with two consumers, each with a small queue."""
        topic, sub, n = self.topic("shared"), "sub-shared", SHARED_COUNT
        q = queue.Queue()
        c0 = self.consumer(topic, sub, pulsar.ConsumerType.Shared, 10, self.listening(q, 0))
        c1 = self.consumer(topic, sub, pulsar.ConsumerType.Shared, 10, self.listening(q, 1))
        p = self.producer(topic)
        for i in range(n):
            p.send(payload("shared", i))
        r["produced"] = n
        got = self.drain(q, n)
        per, last, seen = [0, 0], [-1, -1], set()
        for which, m in got:
            i = index_of("shared", m)
            check(0 <= i < n and i not in seen, "unexpected or repeated message %s", text(m))
            seen.add(i)
            check(m.redelivery_count() == 0, "message %d redelivered (count %d)", i, m.redelivery_count())
            check(i > last[which], "consumer %d got message %d after %d", which, i, last[which])
            last[which] = i
            per[which] += 1
        r["received"] = len(got)
        r["perConsumer"] = per
        check(per[0] > 0 and per[1] > 0, "one consumer got every message: %d and %d", per[0], per[1])
        r["acked"] = len(got)
        p.close()
        c0.close()
        c1.close()
        self.ack_check(topic, sub, pulsar.ConsumerType.Shared, r)

    def key_shared(self, r):
        """(e) A Key_Shared subscription with two consumers: a key goes to
        one only, in order."""
        topic, sub, n = self.topic("key_shared"), "sub-key-shared", KEY_SHARED_COUNT
        q = queue.Queue()
        c0 = self.consumer(topic, sub, pulsar.ConsumerType.KeyShared, 10, self.listening(q, 0))
        c1 = self.consumer(topic, sub, pulsar.ConsumerType.KeyShared, 10, self.listening(q, 1))
        p = self.producer(topic)
        for i in range(n):
            p.send(payload("key_shared", i), partition_key="key-%d" % (i % KEYS))
        r["produced"] = n
        got = self.drain(q, n)
        owner, last_of_key, per, seen = {}, {}, [0, 0], set()
        for which, m in got:
            i = index_of("key_shared", m)
            check(0 <= i < n and i not in seen, "unexpected or repeated message %s", text(m))
            seen.add(i)
            key = "key-%d" % (i % KEYS)
            check(m.partition_key() == key, "message %d has key %s, want %s", i, m.partition_key(), key)
            o = owner.setdefault(key, which)
            check(o == which, "key %s went to consumer %d and to consumer %d", key, o, which)
            prev = last_of_key.get(key, -1)
            check(prev < i, "key %s: message %d came after %d", key, i, prev)
            last_of_key[key] = i
            per[which] += 1
        keys_per = [0, 0]
        for o in owner.values():
            keys_per[o] += 1
        r["received"] = len(got)
        r["keys"] = len(owner)
        r["perConsumer"] = per
        r["keysPerConsumer"] = keys_per
        check(len(owner) == KEYS, "%d keys seen, want %d", len(owner), KEYS)
        check(keys_per[0] > 0 and keys_per[1] > 0, "one consumer got every key: %d and %d", keys_per[0], keys_per[1])
        r["acked"] = len(got)
        p.close()
        c0.close()
        c1.close()
        self.ack_check(topic, sub, pulsar.ConsumerType.KeyShared, r)

    def reader(self, r):
        """(f) A Reader from the earliest message of a topic written before it."""
        topic, n = self.topic("reader"), READER_COUNT
        p = self.producer(topic)
        ids = [p.send(payload("reader", i)) for i in range(n)]
        r["produced"] = n
        rd = self.client.create_reader(topic, pulsar.MessageId.earliest)
        check(rd.has_message_available(), "has_message_available is false before reading %d messages", n)
        for i in range(n):
            try:
                m = rd.read_next(timeout_millis=WAIT_MS)
            except pulsar.Timeout:
                raise CheckFailed("read %d of %d messages, then nothing for %d ms" % (i, n, WAIT_MS))
            check(m.data() == payload("reader", i), "message %d is %s", i, text(m))
            check(same_id(m.message_id(), ids[i]), "message %d came with id %s, its receipt said %s",
                  i, fmt_id(m.message_id()), fmt_id(ids[i]))
        r["received"] = n
        more = rd.has_message_available()
        r["hasMessageAvailableAfter"] = more
        check(not more, "has_message_available is true after reading all %d messages", n)
        rd.close()
        p.close()


_current = None


def run(args):
    global _current
    start = time.monotonic()
    _current = new_result("setup", "")
    log = logging.getLogger("pulsar-client")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(os.environ.get("PULSAR_INTEROP_PY_LOG", "WARNING").upper())
    client = pulsar.Client(args.url, operation_timeout_seconds=10, connection_timeout_ms=5000, logger=log)
    it = Interop(client, args.prefix, args.partitions)
    failed = 0
    for name in args.only:
        r = new_result(name, it.topic(name))
        _current = r
        t0 = time.monotonic()
        try:
            getattr(it, name)(r)
            r["ok"] = True
        except CheckFailed as e:
            r["error"] = str(e)
            failed += 1
        except Exception as e:  # a client error is a failure of the scenario too
            r["error"] = "%s: %s" % (type(e).__name__, e)
            failed += 1
        r["elapsedMs"] = int((time.monotonic() - t0) * 1000)
        emit(r)
    _current = new_result("close", "")
    client.close()
    print("pulsar_interop.py: %d scenarios, %d failed, %d ms"
          % (len(args.only), failed, (time.monotonic() - start) * 1000), file=sys.stderr)
    return 0 if failed == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the broker's service URL, pulsar://host:port")
    ap.add_argument("--prefix", required=True, help="a topic prefix unique to the run")
    ap.add_argument("--partitions", type=int, default=3, help="partitions of PREFIX-partitioned (made by the harness)")
    ap.add_argument("--timeout", type=float, default=60, help="bound on the whole run, in seconds")
    ap.add_argument("--only", default=",".join(SCENARIOS), help="scenarios to run, comma-separated")
    args = ap.parse_args()  # exits 2 on bad arguments
    args.only = args.only.split(",")
    unknown = [s for s in args.only if s not in SCENARIOS]
    if unknown:
        ap.error("unknown scenario(s) %s; known: %s" % (",".join(unknown), ",".join(SCENARIOS)))

    def out_of_time():
        r = dict(_current or new_result("setup", ""))
        r["ok"] = False
        r["error"] = "the run did not end within %g s" % args.timeout
        emit(r)
        # The client's threads may be stuck: do not wait for them.
        os._exit(3)

    watchdog = threading.Timer(args.timeout, out_of_time)
    watchdog.daemon = True
    watchdog.start()
    try:
        code = run(args)
    except Exception as e:
        r = new_result("setup", "")
        r["error"] = "%s: %s" % (type(e).__name__, e)
        emit(r)
        code = 1
    watchdog.cancel()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
