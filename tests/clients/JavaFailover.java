// The official Java client through a leader failover: an idempotent
// acks=all producer sends a record every 5 ms to a topic of two partitions
// while a consumer reads both from the start; the test kills a leader
// meanwhile. Run in Java's source-file mode with Kafka's jars on the class
// path:
//
//   java -cp 'KAFKA/libs/*' tests/clients/JavaFailover.java BOOTSTRAP TOPIC SECONDS READY_FILE
//
// Creates READY_FILE once the first record is acknowledged, produces for
// SECONDS more, then checks that every acknowledged record was consumed
// exactly once at its acknowledged offset. Prints the counts and the
// longest time without an acknowledgement and without a consumed record;
// any failed check throws (exit status 1).

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaFailover {
    static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("check failed: " + what);
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        long seconds = Long.parseLong(args[2]);
        Path ready = Path.of(args[3]);

        // Where each acknowledged value went: "partition/offset".
        Map<String, String> acked = new ConcurrentHashMap<>();
        AtomicInteger failed = new AtomicInteger();
        AtomicLong lastAck = new AtomicLong(0);
        AtomicLong ackGap = new AtomicLong(0);
        Map<String, List<String>> consumed = new ConcurrentHashMap<>();
        AtomicLong consumeGap = new AtomicLong(0);
        AtomicLong consumedCount = new AtomicLong(0);
        java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();

        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("enable.auto.commit", "false");
        c.put("auto.offset.reset", "earliest");
        Thread reader = new Thread(() -> {
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
                consumer.assign(List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1)));
                consumer.seekToBeginning(consumer.assignment());
                long last = 0;
                while (!stop.get()) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                        long now = System.nanoTime();
                        if (last != 0) {
                            consumeGap.accumulateAndGet((now - last) / 1_000_000, Math::max);
                        }
                        last = now;
                        consumed.computeIfAbsent(r.value(), k -> new ArrayList<>())
                                .add(r.partition() + "/" + r.offset());
                        consumedCount.incrementAndGet();
                    }
                }
            }
        });
        reader.start();

        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("enable.idempotence", "true");
        p.put("acks", "all");
        p.put("delivery.timeout.ms", "60000");
        int sent = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            long deadline = Long.MAX_VALUE;
            while (System.nanoTime() < deadline) {
                String value = "v-" + sent;
                producer.send(new ProducerRecord<>(topic, sent % 2, "k-" + sent, value), (m, e) -> {
                    if (e != null) {
                        failed.incrementAndGet();
                        System.out.println("delivery failed: " + e);
                        return;
                    }
                    long now = System.nanoTime();
                    long before = lastAck.getAndSet(now);
                    if (before != 0) {
                        ackGap.accumulateAndGet((now - before) / 1_000_000, Math::max);
                    }
                    acked.put(value, m.partition() + "/" + m.offset());
                });
                sent++;
                if (deadline == Long.MAX_VALUE && !acked.isEmpty()) {
                    Files.writeString(ready, "producing\n");
                    deadline = System.nanoTime() + seconds * 1_000_000_000L;
                }
                Thread.sleep(5);
            }
            producer.flush();
        }
        long wait = System.nanoTime() + 60_000_000_000L;
        while (consumedCount.get() < acked.size() && System.nanoTime() < wait) {
            Thread.sleep(100);
        }
        stop.set(true);
        reader.join();
        check(acked.size() + failed.get() == sent, "a report for every record sent");
        for (Map.Entry<String, String> a : acked.entrySet()) {
            List<String> where = consumed.get(a.getKey());
            check(where != null, a.getKey() + " acknowledged at " + a.getValue() + " was not consumed");
            check(where.size() == 1 && where.get(0).equals(a.getValue()),
                    a.getKey() + " acknowledged at " + a.getValue() + " consumed at " + where);
        }
        System.out.println("sent " + sent + ", acknowledged " + acked.size() + ", failed " + failed.get()
                + ", consumed " + consumedCount.get());
        System.out.println("longest without an acknowledgement: " + ackGap.get() + " ms");
        System.out.println("longest without a consumed record: " + consumeGap.get() + " ms");
    }
}
