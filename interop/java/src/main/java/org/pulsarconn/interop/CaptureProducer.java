package org.pulsarconn.interop;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.apache.pulsar.client.api.CompressionType;
import org.apache.pulsar.client.api.MessageId;
import org.apache.pulsar.client.api.Producer;
import org.apache.pulsar.client.api.ProducerBuilder;
import org.apache.pulsar.client.api.PulsarClient;
import org.apache.pulsar.client.api.TypedMessageBuilder;

/**
 * Publishes the messages it reads on stdin with the official Java client,
 * for interop/cmd/capture, which records the frames on the way.
 *
 * <p>Usage: {@code CaptureProducer --url SERVICE_URL --topic TOPIC
 * --compression NONE|LZ4|ZLIB|ZSTD|SNAPPY --batched true|false}. Each stdin
 * line is one message: tab-separated payload, key (empty: none), event
 * time in ms (0: none), then any number of {@code name=value} properties.
 * Batched, all the messages go in one batch (sent when it is full, or on
 * flush); otherwise each is a SEND of its own. It prints the id of each
 * message and exits 0 once all are receipted, 1 on any failure.
 */
public final class CaptureProducer {
    private CaptureProducer() {}

    public static void main(String[] args) {
        try {
            run(args);
            System.exit(0);
        } catch (Exception e) {
            System.err.println("CaptureProducer: " + e);
            System.exit(1);
        }
    }

    static void run(String[] args) throws Exception {
        String url = null;
        String topic = null;
        CompressionType compression = CompressionType.NONE;
        boolean batched = false;
        for (int i = 0; i + 1 < args.length; i += 2) {
            String v = args[i + 1];
            switch (args[i]) {
                case "--url" -> url = v;
                case "--topic" -> topic = v;
                case "--compression" -> compression = CompressionType.valueOf(v);
                case "--batched" -> batched = Boolean.parseBoolean(v);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (url == null || topic == null) {
            throw new IllegalArgumentException("--url and --topic are required");
        }
        List<String[]> messages = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (!line.isEmpty()) {
                messages.add(line.split("\t", -1));
            }
        }
        try (PulsarClient client = PulsarClient.builder().serviceUrl(url).build()) {
            ProducerBuilder<byte[]> pb = client.newProducer().topic(topic)
                    .compressionType(compression).enableBatching(batched)
                    // Compress even these small test bodies: the client
                    // leaves bodies under 4 KiB uncompressed by default.
                    .compressionMinMsgBodySize(0);
            if (batched) {
                pb = pb.batchingMaxMessages(messages.size())
                        .batchingMaxPublishDelay(1, TimeUnit.HOURS)
                        .batchingMaxBytes(1 << 20);
            }
            try (Producer<byte[]> p = pb.create()) {
                List<CompletableFuture<MessageId>> sent = new ArrayList<>();
                for (String[] m : messages) {
                    TypedMessageBuilder<byte[]> b = p.newMessage().value(m[0].getBytes(StandardCharsets.UTF_8));
                    if (!m[1].isEmpty()) {
                        b.key(m[1]);
                    }
                    long eventTime = Long.parseLong(m[2]);
                    if (eventTime != 0) {
                        b.eventTime(eventTime);
                    }
                    for (int i = 3; i < m.length; i++) {
                        int eq = m[i].indexOf('=');
                        b.property(m[i].substring(0, eq), m[i].substring(eq + 1));
                    }
                    sent.add(b.sendAsync());
                }
                p.flush();
                for (CompletableFuture<MessageId> f : sent) {
                    System.out.println(f.get(15, TimeUnit.SECONDS));
                }
            }
        }
    }
}
