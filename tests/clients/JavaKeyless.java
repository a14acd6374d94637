// The official Java client against a compacted topic: a record without a
// key is refused (INVALID_RECORD, KIP-467), a keyed one is taken, then six
// rounds of keys k0..k9 (values rR-K), each in its own segment
// (segment.ms=100), for the cleaner to compact. Run in
// Java's source-file mode with Kafka's jars on the class path:
//
//   java -cp 'KAFKA/libs/*' tests/clients/JavaKeyless.java BOOTSTRAP TOPIC
//
// Prints one line per outcome; any failed check throws (exit status 1).

import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaKeyless {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        Properties common = new Properties();
        common.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1)
                    .configs(Map.of("cleanup.policy", "compact", "segment.ms", "100",
                            "min.cleanable.dirty.ratio", "0.01")))).all().get();
        }
        Properties p = new Properties();
        p.putAll(common);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("delivery.timeout.ms", "20000");
        p.put("request.timeout.ms", "10000");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            try {
                producer.send(new ProducerRecord<>(topic, null, "no key")).get();
                throw new IllegalStateException("a keyless record was accepted by a compacted topic");
            } catch (ExecutionException e) {
                System.out.println("keyless refused: " + e.getCause().getClass().getSimpleName()
                        + ": " + e.getCause().getMessage());
            }
            RecordMetadata m = producer.send(new ProducerRecord<>(topic, "k", "keyed")).get();
            System.out.println("keyed taken at offset " + m.offset());
            for (int round = 0; round < 6; round++) {
                for (int k = 0; k < 10; k++) {
                    producer.send(new ProducerRecord<>(topic, "k" + k, "r" + round + "-" + k));
                }
                producer.flush();
                Thread.sleep(150);
            }
            System.out.println("rounds written");
        }
    }
}
