package org.pulsarconn.interop;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.pulsar.client.api.Consumer;
import org.apache.pulsar.client.api.Message;
import org.apache.pulsar.client.api.MessageId;
import org.apache.pulsar.client.api.MessageIdAdv;
import org.apache.pulsar.client.api.MessageRoutingMode;
import org.apache.pulsar.client.api.Producer;
import org.apache.pulsar.client.api.PulsarClient;
import org.apache.pulsar.client.api.Reader;
import org.apache.pulsar.client.api.SubscriptionInitialPosition;
import org.apache.pulsar.client.api.SubscriptionType;

/**
 * Runs the official Java client (org.apache.pulsar:pulsar-client) through
 * six scenarios against one broker, pulsartest or a real one, and checks
 * what it received itself.
 *
 * <p>Usage: {@code PulsarInterop --url SERVICE_URL --prefix TOPIC_PREFIX
 * [--partitions N] [--timeout SECONDS] [--only name,name]}. The topics are
 * {@code PREFIX-<scenario>}; {@code PREFIX-partitioned} must already exist
 * with N partitions (3 unless told): the harness makes it.
 *
 * <p>stdout carries one JSON object per scenario and nothing else (the
 * client logs to stderr). The exit status is 0 when every scenario passed,
 * 1 when one failed, 2 on bad arguments and 3 when the whole run outlived
 * --timeout (60 s unless told).
 */
public final class PulsarInterop {
    /** How long any single receive, send or close may take. */
    static final long WAIT_MS = 15_000;

    static final int EXCLUSIVE_COUNT = 100;
    static final int BATCHED_COUNT = 100;
    static final int BATCH_SIZE = 10;
    static final int PARTITIONED_COUNT = 30;
    static final int SHARED_COUNT = 100;
    static final int KEY_SHARED_COUNT = 100;
    static final int KEYS = 20;
    static final int READER_COUNT = 20;

    static final List<String> SCENARIOS =
            List.of("exclusive", "batched", "partitioned", "shared", "key_shared", "reader");

    private final PulsarClient client;
    private final String prefix;
    private final int partitions;

    private PulsarInterop(PulsarClient client, String prefix, int partitions) {
        this.client = client;
        this.prefix = prefix;
        this.partitions = partitions;
    }

    /** A failed check: the message says what was expected and what came. */
    static final class CheckFailed extends Exception {
        private static final long serialVersionUID = 1L;

        CheckFailed(String msg) {
            super(msg);
        }
    }

    static void check(boolean ok, String fmt, Object... args) throws CheckFailed {
        if (!ok) {
            throw new CheckFailed(String.format(fmt, args));
        }
    }

    public static void main(String[] args) {
        String url = null;
        String prefix = null;
        int partitions = 3;
        long timeoutSeconds = 60;
        List<String> only = SCENARIOS;
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                String v = i + 1 < args.length ? args[i + 1] : null;
                switch (a) {
                    case "--url" -> url = v;
                    case "--prefix" -> prefix = v;
                    case "--partitions" -> partitions = Integer.parseInt(v);
                    case "--timeout" -> timeoutSeconds = Long.parseLong(v);
                    case "--only" -> only = Arrays.asList(v.split(","));
                    default -> throw new IllegalArgumentException("unknown argument " + a);
                }
                i++;
            }
            if (url == null || prefix == null) {
                throw new IllegalArgumentException("--url and --prefix are required");
            }
            for (String s : only) {
                if (!SCENARIOS.contains(s)) {
                    throw new IllegalArgumentException("unknown scenario " + s + "; known: " + SCENARIOS);
                }
            }
        } catch (RuntimeException e) {
            System.err.println("PulsarInterop: " + e.getMessage());
            System.err.println("usage: PulsarInterop --url SERVICE_URL --prefix TOPIC_PREFIX"
                    + " [--partitions N] [--timeout SECONDS] [--only " + String.join(",", SCENARIOS) + "]");
            System.exit(2);
            return;
        }
        System.exit(run(url, prefix, partitions, timeoutSeconds, only));
    }

    /** The scenario running now, for the line printed when time runs out. */
    private static volatile Map<String, Object> current;

    static int run(String url, String prefix, int partitions, long timeoutSeconds, List<String> only) {
        ExecutorService runner = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "scenarios");
            t.setDaemon(true);
            return t;
        });
        Future<Integer> all = runner.submit(() -> runAll(url, prefix, partitions, only));
        try {
            return all.get(timeoutSeconds, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            Map<String, Object> r = current;
            if (r == null) {
                r = result("setup", "");
            }
            r.put("ok", false);
            r.put("error", "the run did not end within " + timeoutSeconds + " s");
            emit(r);
            // Threads of the client may be stuck: do not wait for them.
            Runtime.getRuntime().halt(3);
            return 3;
        } catch (Exception e) {
            Map<String, Object> r = result("setup", "");
            r.put("ok", false);
            r.put("error", describe(e));
            emit(r);
            return 1;
        }
    }

    static int runAll(String url, String prefix, int partitions, List<String> only) throws Exception {
        long start = System.nanoTime();
        current = result("setup", "");
        PulsarClient client = PulsarClient.builder()
                .serviceUrl(url)
                .operationTimeout(10, TimeUnit.SECONDS)
                .connectionTimeout(5, TimeUnit.SECONDS)
                .build();
        PulsarInterop p = new PulsarInterop(client, prefix, partitions);
        int failed = 0;
        for (String name : only) {
            Map<String, Object> r = result(name, p.topic(name));
            current = r;
            long t0 = System.nanoTime();
            try {
                switch (name) {
                    case "exclusive" -> p.exclusive(r);
                    case "batched" -> p.batched(r);
                    case "partitioned" -> p.partitioned(r);
                    case "shared" -> p.shared(r);
                    case "key_shared" -> p.keyShared(r);
                    case "reader" -> p.reader(r);
                    default -> throw new CheckFailed("unknown scenario " + name);
                }
                r.put("ok", true);
            } catch (Exception e) {
                r.put("ok", false);
                r.put("error", describe(e));
                failed++;
            }
            r.put("elapsedMs", (System.nanoTime() - t0) / 1_000_000);
            emit(r);
        }
        current = result("close", "");
        client.closeAsync().get(WAIT_MS, TimeUnit.MILLISECONDS);
        System.err.printf("PulsarInterop: %d scenarios, %d failed, %d ms%n",
                only.size(), failed, (System.nanoTime() - start) / 1_000_000);
        return failed == 0 ? 0 : 1;
    }

    static Map<String, Object> result(String scenario, String topic) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("client", "java");
        r.put("scenario", scenario);
        r.put("ok", false);
        r.put("topic", topic);
        return r;
    }

    static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (sb.length() > 0) {
                sb.append(": ");
            }
            sb.append(c instanceof CheckFailed ? c.getMessage() : c.toString());
            if (c.getCause() == c) {
                break;
            }
        }
        return sb.toString();
    }

    String topic(String scenario) {
        return "persistent://public/default/" + prefix + "-" + scenario.replace('_', '-');
    }

    // ---- the scenarios ----

    /** (a) An unbatched producer and an Exclusive consumer with ack receipts. */
    void exclusive(Map<String, Object> r) throws Exception {
        String topic = topic("exclusive");
        String sub = "sub-exclusive";
        int n = EXCLUSIVE_COUNT;
        Consumer<byte[]> c = consumer(topic, sub, SubscriptionType.Exclusive, 1000, null);
        Producer<byte[]> p = client.newProducer().topic(topic).enableBatching(false).create();
        List<MessageId> ids = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ids.add(p.newMessage().value(payload("exclusive", i)).property("index", String.valueOf(i)).send());
        }
        for (int i = 0; i < n; i++) {
            MessageIdAdv id = (MessageIdAdv) ids.get(i);
            check(id.getBatchIndex() < 0, "receipt %d is %s, a batch position, with batching off", i, id);
            if (i > 0) {
                check(ids.get(i - 1).compareTo(id) < 0, "receipt %d (%s) does not come after %s", i, id, ids.get(i - 1));
            }
        }
        r.put("produced", n);
        r.put("entries", distinctEntries(ids));
        List<Message<byte[]>> got = receiveInOrder(c, "exclusive", n, ids, r);
        for (int i = 0; i < n; i++) {
            check(String.valueOf(i).equals(got.get(i).getProperty("index")),
                    "message %d has property index=%s", i, got.get(i).getProperty("index"));
        }
        p.close();
        c.close();
        ackCheck(topic, sub, SubscriptionType.Exclusive, r);
    }

    /** (b) A batching producer, 10 messages a batch, and an Exclusive consumer. */
    void batched(Map<String, Object> r) throws Exception {
        String topic = topic("batched");
        String sub = "sub-batched";
        int n = BATCHED_COUNT;
        Consumer<byte[]> c = consumer(topic, sub, SubscriptionType.Exclusive, 1000, null);
        // The batch is sent when it holds BATCH_SIZE messages, or on flush:
        // the delay is long enough never to cut one short.
        Producer<byte[]> p = client.newProducer().topic(topic)
                .enableBatching(true)
                .batchingMaxMessages(BATCH_SIZE)
                .batchingMaxPublishDelay(10, TimeUnit.SECONDS)
                .create();
        List<CompletableFuture<MessageId>> sends = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            sends.add(p.newMessage().value(payload("batched", i)).sendAsync());
        }
        p.flush();
        CompletableFuture.allOf(sends.toArray(new CompletableFuture<?>[0])).get(WAIT_MS, TimeUnit.MILLISECONDS);
        List<MessageId> ids = new ArrayList<>();
        for (CompletableFuture<MessageId> f : sends) {
            ids.add(f.get());
        }
        for (int i = 0; i < n; i++) {
            MessageIdAdv id = (MessageIdAdv) ids.get(i);
            // A receipt names the entry and the index in it; the batch size
            // comes with the messages a consumer receives.
            check(id.getBatchIndex() == i % BATCH_SIZE, "receipt %d is %s with batch index %d, want %d",
                    i, id, id.getBatchIndex(), i % BATCH_SIZE);
        }
        int entries = distinctEntries(ids);
        check(entries == n / BATCH_SIZE, "the %d messages went in %d entries, want %d batches", n, entries, n / BATCH_SIZE);
        r.put("produced", n);
        r.put("entries", entries);
        List<Message<byte[]>> got = receiveInOrder(c, "batched", n, ids, r);
        for (int i = 0; i < n; i++) {
            MessageIdAdv id = (MessageIdAdv) got.get(i).getMessageId();
            check(id.getBatchSize() == BATCH_SIZE, "message %d came with id %s in a batch of %d, want %d",
                    i, id, id.getBatchSize(), BATCH_SIZE);
        }
        p.close();
        c.close();
        ackCheck(topic, sub, SubscriptionType.Exclusive, r);
    }

    /**
     * (c) A partitioned topic: the partitions the broker lists, round-robin
     * routing, and one consumer of all partitions, each partition in order.
     */
    void partitioned(Map<String, Object> r) throws Exception {
        String topic = topic("partitioned");
        String sub = "sub-partitioned";
        int n = PARTITIONED_COUNT;
        List<String> parts = client.getPartitionsForTopic(topic).get(WAIT_MS, TimeUnit.MILLISECONDS);
        List<String> want = new ArrayList<>();
        for (int i = 0; i < partitions; i++) {
            want.add(topic + "-partition-" + i);
        }
        check(parts.equals(want), "the partitions of %s are %s, want %s", topic, parts, want);
        r.put("partitions", parts.size());
        Consumer<byte[]> c = consumer(topic, sub, SubscriptionType.Exclusive, 1000, null);
        Producer<byte[]> p = client.newProducer().topic(topic)
                .enableBatching(false)
                .messageRoutingMode(MessageRoutingMode.RoundRobinPartition)
                .create();
        List<MessageId> ids = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ids.add(p.newMessage().value(payload("partitioned", i)).send());
        }
        int first = ((MessageIdAdv) ids.get(0)).getPartitionIndex();
        int[] perPartition = new int[partitions];
        for (int i = 0; i < n; i++) {
            int part = ((MessageIdAdv) ids.get(i)).getPartitionIndex();
            check(part == (first + i) % partitions, "message %d went to partition %d, want %d (round-robin from %d)",
                    i, part, (first + i) % partitions, first);
            perPartition[part]++;
        }
        r.put("produced", n);
        r.put("perPartition", Arrays.stream(perPartition).boxed().toList());
        int[] last = new int[partitions];
        Arrays.fill(last, -1);
        Set<Integer> seen = new HashSet<>();
        int acked = 0;
        for (int k = 0; k < n; k++) {
            Message<byte[]> m = c.receive((int) WAIT_MS, TimeUnit.MILLISECONDS);
            check(m != null, "received %d of %d messages, then nothing for %d ms", k, n, WAIT_MS);
            int i = indexOf("partitioned", m);
            check(i >= 0 && i < n && seen.add(i), "unexpected or repeated message %s", text(m));
            int part = ((MessageIdAdv) m.getMessageId()).getPartitionIndex();
            check(part == ((MessageIdAdv) ids.get(i)).getPartitionIndex() && sameId(m.getMessageId(), ids.get(i)),
                    "message %d came with id %s, its receipt said %s", i, m.getMessageId(), ids.get(i));
            check(m.getTopicName().equals(want.get(part)), "message %d came from %s, want %s", i, m.getTopicName(), want.get(part));
            check(i > last[part], "partition %d delivered message %d after %d", part, i, last[part]);
            last[part] = i;
            c.acknowledge(m);
            acked++;
        }
        r.put("received", n);
        r.put("acked", acked);
        p.close();
        c.close();
        ackCheck(topic, sub, SubscriptionType.Exclusive, r);
    }

    /** (d) A Shared subscription with two consumers, each with a small queue. */
    void shared(Map<String, Object> r) throws Exception {
        String topic = topic("shared");
        String sub = "sub-shared";
        int n = SHARED_COUNT;
        LinkedBlockingQueue<Got> q = new LinkedBlockingQueue<>();
        List<CompletableFuture<Void>> acks = new ArrayList<>();
        Consumer<byte[]> c0 = consumer(topic, sub, SubscriptionType.Shared, 10, (cons, m) -> got(q, 0, cons, m, acks));
        Consumer<byte[]> c1 = consumer(topic, sub, SubscriptionType.Shared, 10, (cons, m) -> got(q, 1, cons, m, acks));
        Producer<byte[]> p = client.newProducer().topic(topic).enableBatching(false).create();
        for (int i = 0; i < n; i++) {
            p.newMessage().value(payload("shared", i)).send();
        }
        r.put("produced", n);
        List<Got> all = drain(q, n);
        int[] per = new int[2];
        int[] last = {-1, -1};
        Set<Integer> seen = new HashSet<>();
        for (Got g : all) {
            int i = indexOf("shared", g.msg);
            check(i >= 0 && i < n && seen.add(i), "unexpected or repeated message %s", text(g.msg));
            check(g.msg.getRedeliveryCount() == 0, "message %d redelivered (count %d)", i, g.msg.getRedeliveryCount());
            check(i > last[g.consumer], "consumer %d got message %d after %d", g.consumer, i, last[g.consumer]);
            last[g.consumer] = i;
            per[g.consumer]++;
        }
        r.put("received", all.size());
        r.put("perConsumer", List.of(per[0], per[1]));
        check(per[0] > 0 && per[1] > 0, "one consumer got every message: %d and %d", per[0], per[1]);
        r.put("acked", awaitAcks(acks));
        p.close();
        c0.close();
        c1.close();
        ackCheck(topic, sub, SubscriptionType.Shared, r);
    }

    /** (e) A Key_Shared subscription with two consumers: a key goes to one only, in order. */
    void keyShared(Map<String, Object> r) throws Exception {
        String topic = topic("key_shared");
        String sub = "sub-key-shared";
        int n = KEY_SHARED_COUNT;
        LinkedBlockingQueue<Got> q = new LinkedBlockingQueue<>();
        List<CompletableFuture<Void>> acks = new ArrayList<>();
        Consumer<byte[]> c0 = consumer(topic, sub, SubscriptionType.Key_Shared, 10, (cons, m) -> got(q, 0, cons, m, acks));
        Consumer<byte[]> c1 = consumer(topic, sub, SubscriptionType.Key_Shared, 10, (cons, m) -> got(q, 1, cons, m, acks));
        Producer<byte[]> p = client.newProducer().topic(topic).enableBatching(false).create();
        for (int i = 0; i < n; i++) {
            p.newMessage().key("key-" + (i % KEYS)).value(payload("key_shared", i)).send();
        }
        r.put("produced", n);
        List<Got> all = drain(q, n);
        Map<String, Integer> owner = new HashMap<>();
        Map<String, Integer> lastOfKey = new HashMap<>();
        int[] per = new int[2];
        Set<Integer> seen = new HashSet<>();
        for (Got g : all) {
            int i = indexOf("key_shared", g.msg);
            check(i >= 0 && i < n && seen.add(i), "unexpected or repeated message %s", text(g.msg));
            String key = "key-" + (i % KEYS);
            check(key.equals(g.msg.getKey()), "message %d has key %s, want %s", i, g.msg.getKey(), key);
            Integer o = owner.putIfAbsent(key, g.consumer);
            check(o == null || o == g.consumer, "key %s went to consumer %d and to consumer %d", key, o, g.consumer);
            Integer prev = lastOfKey.put(key, i);
            check(prev == null || prev < i, "key %s: message %d came after %d", key, i, prev);
            per[g.consumer]++;
        }
        int[] keysPer = new int[2];
        owner.values().forEach(o -> keysPer[o]++);
        r.put("received", all.size());
        r.put("keys", owner.size());
        r.put("perConsumer", List.of(per[0], per[1]));
        r.put("keysPerConsumer", List.of(keysPer[0], keysPer[1]));
        check(owner.size() == KEYS, "%d keys seen, want %d", owner.size(), KEYS);
        check(keysPer[0] > 0 && keysPer[1] > 0, "one consumer got every key: %d and %d", keysPer[0], keysPer[1]);
        r.put("acked", awaitAcks(acks));
        p.close();
        c0.close();
        c1.close();
        ackCheck(topic, sub, SubscriptionType.Key_Shared, r);
    }

    /** (f) A Reader from the earliest message of a topic written before it. */
    void reader(Map<String, Object> r) throws Exception {
        String topic = topic("reader");
        int n = READER_COUNT;
        Producer<byte[]> p = client.newProducer().topic(topic).enableBatching(false).create();
        List<MessageId> ids = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ids.add(p.newMessage().value(payload("reader", i)).send());
        }
        r.put("produced", n);
        Reader<byte[]> rd = client.newReader().topic(topic).startMessageId(MessageId.earliest).create();
        check(rd.hasMessageAvailable(), "hasMessageAvailable is false before reading %d messages", n);
        for (int i = 0; i < n; i++) {
            Message<byte[]> m = rd.readNext((int) WAIT_MS, TimeUnit.MILLISECONDS);
            check(m != null, "read %d of %d messages, then nothing for %d ms", i, n, WAIT_MS);
            check(Arrays.equals(m.getValue(), payload("reader", i)), "message %d is %s", i, text(m));
            check(sameId(m.getMessageId(), ids.get(i)), "message %d came with id %s, its receipt said %s", i, m.getMessageId(), ids.get(i));
        }
        r.put("received", n);
        boolean more = rd.hasMessageAvailable();
        r.put("hasMessageAvailableAfter", more);
        check(!more, "hasMessageAvailable is true after reading all %d messages", n);
        rd.close();
        p.close();
    }

    // ---- helpers ----

    interface Listener {
        void received(Consumer<byte[]> c, Message<byte[]> m);
    }

    Consumer<byte[]> consumer(String topic, String sub, SubscriptionType type, int queue, Listener l) throws Exception {
        var b = client.newConsumer()
                .topic(topic)
                .subscriptionName(sub)
                .subscriptionType(type)
                .subscriptionInitialPosition(SubscriptionInitialPosition.Earliest)
                .receiverQueueSize(queue)
                // Each ack waits for the broker's receipt; sent at once
                // rather than grouped for 100 ms.
                .isAckReceiptEnabled(true)
                .acknowledgmentGroupTime(0, TimeUnit.MILLISECONDS);
        if (l != null) {
            b = b.messageListener(l::received);
        }
        return b.subscribe();
    }

    record Got(int consumer, Message<byte[]> msg) {}

    static void got(LinkedBlockingQueue<Got> q, int consumer, Consumer<byte[]> c, Message<byte[]> m,
            List<CompletableFuture<Void>> acks) {
        synchronized (acks) {
            acks.add(c.acknowledgeAsync(m));
        }
        q.add(new Got(consumer, m));
    }

    /** Takes n messages from q, each within WAIT_MS. */
    static List<Got> drain(LinkedBlockingQueue<Got> q, int n) throws Exception {
        List<Got> out = new ArrayList<>();
        while (out.size() < n) {
            Got g = q.poll(WAIT_MS, TimeUnit.MILLISECONDS);
            check(g != null, "received %d of %d messages, then nothing for %d ms", out.size(), n, WAIT_MS);
            out.add(g);
        }
        return out;
    }

    static int awaitAcks(List<CompletableFuture<Void>> acks) throws Exception {
        CompletableFuture<?>[] all;
        synchronized (acks) {
            all = acks.toArray(new CompletableFuture<?>[0]);
        }
        CompletableFuture.allOf(all).get(WAIT_MS, TimeUnit.MILLISECONDS);
        return all.length;
    }

    /**
     * Receives n messages from c, checks each is the next payload of the
     * scenario with the id of its receipt and no redelivery, and acks it
     * (with a receipt from the broker).
     */
    List<Message<byte[]>> receiveInOrder(Consumer<byte[]> c, String scenario, int n, List<MessageId> ids,
            Map<String, Object> r) throws Exception {
        List<Message<byte[]>> out = new ArrayList<>();
        int acked = 0;
        for (int i = 0; i < n; i++) {
            Message<byte[]> m = c.receive((int) WAIT_MS, TimeUnit.MILLISECONDS);
            check(m != null, "received %d of %d messages, then nothing for %d ms", i, n, WAIT_MS);
            check(Arrays.equals(m.getValue(), payload(scenario, i)), "message %d is %s, want %s-%d", i, text(m), scenario, i);
            check(sameId(m.getMessageId(), ids.get(i)), "message %d came with id %s, its receipt said %s", i, m.getMessageId(), ids.get(i));
            check(m.getRedeliveryCount() == 0, "message %d redelivered (count %d)", i, m.getRedeliveryCount());
            out.add(m);
            c.acknowledge(m);
            acked++;
        }
        r.put("received", n);
        r.put("acked", acked);
        return out;
    }

    /**
     * Checks that the acknowledgements took: with every consumer of sub
     * closed, a new message is sent, and a new consumer of sub must get it
     * first, not anything acknowledged before.
     */
    void ackCheck(String topic, String sub, SubscriptionType type, Map<String, Object> r) throws Exception {
        byte[] sentinel = "sentinel".getBytes(StandardCharsets.UTF_8);
        try (Producer<byte[]> p = client.newProducer().topic(topic).enableBatching(false).create()) {
            p.newMessage().key("sentinel").value(sentinel).send();
        }
        Consumer<byte[]> c = consumer(topic, sub, type, 1000, null);
        Message<byte[]> m = c.receive((int) WAIT_MS, TimeUnit.MILLISECONDS);
        check(m != null, "ack check: a new consumer of %s got nothing within %d ms", sub, WAIT_MS);
        check(Arrays.equals(m.getValue(), sentinel), "ack check: a new consumer of %s got %s (redelivery count %d) before the new message",
                sub, text(m), m.getRedeliveryCount());
        c.acknowledge(m);
        c.close();
        r.put("ackChecked", true);
    }

    static byte[] payload(String scenario, int i) {
        return (scenario + "-" + i).getBytes(StandardCharsets.UTF_8);
    }

    static String text(Message<byte[]> m) {
        return new String(m.getValue(), StandardCharsets.UTF_8);
    }

    /** The index i of a payload "scenario-i", or -1. */
    static int indexOf(String scenario, Message<byte[]> m) {
        String s = text(m);
        if (!s.startsWith(scenario + "-")) {
            return -1;
        }
        try {
            return Integer.parseInt(s.substring(scenario.length() + 1));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    static boolean sameId(MessageId a, MessageId b) {
        MessageIdAdv x = (MessageIdAdv) a;
        MessageIdAdv y = (MessageIdAdv) b;
        return x.getLedgerId() == y.getLedgerId() && x.getEntryId() == y.getEntryId()
                && x.getPartitionIndex() == y.getPartitionIndex() && x.getBatchIndex() == y.getBatchIndex();
    }

    static int distinctEntries(List<MessageId> ids) {
        Set<String> s = new HashSet<>();
        for (MessageId id : ids) {
            MessageIdAdv a = (MessageIdAdv) id;
            s.add(a.getPartitionIndex() + ":" + a.getLedgerId() + ":" + a.getEntryId());
        }
        return s.size();
    }

    // ---- output ----

    static synchronized void emit(Map<String, Object> r) {
        StringBuilder sb = new StringBuilder();
        json(sb, r);
        System.out.println(sb);
        System.out.flush();
    }

    static void json(StringBuilder sb, Object v) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof String s) {
            sb.append('"');
            for (int i = 0; i < s.length(); i++) {
                char ch = s.charAt(i);
                switch (ch) {
                    case '"' -> sb.append("\\\"");
                    case '\\' -> sb.append("\\\\");
                    case '\n' -> sb.append("\\n");
                    case '\r' -> sb.append("\\r");
                    case '\t' -> sb.append("\\t");
                    default -> {
                        if (ch < 0x20) {
                            sb.append(String.format("\\u%04x", (int) ch));
                        } else {
                            sb.append(ch);
                        }
                    }
                }
            }
            sb.append('"');
        } else if (v instanceof Number || v instanceof Boolean) {
            sb.append(v);
        } else if (v instanceof Map<?, ?> m) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                json(sb, String.valueOf(e.getKey()));
                sb.append(':');
                json(sb, e.getValue());
            }
            sb.append('}');
        } else if (v instanceof List<?> l) {
            sb.append('[');
            for (int i = 0; i < l.size(); i++) {
                if (i > 0) {
                    sb.append(',');
                }
                json(sb, l.get(i));
            }
            sb.append(']');
        } else {
            json(sb, v.toString());
        }
    }
}
