// The official Java client (kafka-clients 4.x) against the broker: the
// Admin API, an idempotent producer with every compression codec, and a
// consumer in a group (the classic protocol). Run in Java's source-file
// mode with Kafka's jars on the class path:
//
//   java -cp 'KAFKA/libs/*' tests/clients/JavaClient.java BOOTSTRAP TOPIC RECORDS_PER_CODEC [PROPERTIES]
//
// PROPERTIES: a file of client settings every client gets (SASL, say).
//
// Prints one line per step; any failed check throws (exit status 1).

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaClient {
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    static final String GROUP = "java-client-group";

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new IllegalStateException("check failed: " + what);
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        int perCodec = Integer.parseInt(args[2]);
        Properties common = new Properties();
        if (args.length > 3) {
            try (java.io.FileReader r = new java.io.FileReader(args[3])) {
                common.load(r);
            }
        }
        common.put("bootstrap.servers", bootstrap);

        try (Admin admin = Admin.create(common)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
            check(admin.listTopics().names().get().contains(topic), "listTopics has " + topic);
            check(partitions(admin, topic) == 3, "3 partitions after create");
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
            check(partitions(admin, topic) == 4, "4 partitions after createPartitions");
            ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            AlterConfigOp set = new AlterConfigOp(
                    new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET);
            admin.incrementalAlterConfigs(Map.of(resource, List.of(set))).all().get();
            Config config = admin.describeConfigs(List.of(resource)).all().get().get(resource);
            check("3600000".equals(config.get("retention.ms").value()), "retention.ms set");
            System.out.println("admin: created " + topic + ", 4 partitions, retention.ms=3600000");
        }

        int total = 0;
        for (String codec : CODECS) {
            Properties p = new Properties();
            p.putAll(common);
            p.put("enable.idempotence", "true");
            p.put("acks", "all");
            p.put("compression.type", codec);
            p.put("linger.ms", "5");
            p.put("key.serializer", StringSerializer.class.getName());
            p.put("value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                List<Future<RecordMetadata>> sent = new ArrayList<>();
                for (int i = 0; i < perCodec; i++) {
                    String key = codec + "-" + i;
                    ProducerRecord<String, String> record =
                            new ProducerRecord<>(topic, key, "value-" + key + "-" + "x".repeat(i % 50));
                    record.headers().add("codec", codec.getBytes(StandardCharsets.UTF_8));
                    sent.add(producer.send(record));
                }
                producer.flush();
                for (Future<RecordMetadata> f : sent) {
                    check(f.get().offset() >= 0, "acknowledged with an offset");
                }
            }
            total += perCodec;
            System.out.println("producer: " + perCodec + " idempotent acks=all records, compression " + codec);
        }

        Properties c = new Properties();
        c.putAll(common);
        c.put("group.id", GROUP);
        c.put("group.protocol", "classic");
        c.put("auto.offset.reset", "earliest");
        c.put("enable.auto.commit", "false");
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        Set<String> seen = new HashSet<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 60_000;
            while (seen.size() < total && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    String key = r.key();
                    int i = Integer.parseInt(key.substring(key.indexOf('-') + 1));
                    check(r.value().equals("value-" + key + "-" + "x".repeat(i % 50)), "value of " + key);
                    Header h = r.headers().lastHeader("codec");
                    check(h != null && key.startsWith(new String(h.value(), StandardCharsets.UTF_8) + "-"),
                            "codec header of " + key);
                    check(seen.add(key), "no duplicate of " + key);
                }
            }
            check(seen.size() == total, "consumed " + seen.size() + " of " + total);
            consumer.commitSync();
            System.out.println("consumer: " + total + " records in group " + GROUP
                    + " (classic protocol), keys, values and headers as sent, offsets committed");
        }

        try (Admin admin = Admin.create(common)) {
            Map<TopicPartition, OffsetAndMetadata> committed =
                    admin.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata().get();
            long committedSum = committed.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
            check(committedSum == total, "committed offsets sum " + committedSum);
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            for (int p = 0; p < 4; p++) {
                latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
            }
            long ends = admin.listOffsets(latest).all().get().values().stream()
                    .mapToLong(info -> info.offset()).sum();
            check(ends == total, "log end offsets sum " + ends);
            TopicPartition first = committed.keySet().stream()
                    .filter(tp -> committed.get(tp).offset() > 0).findFirst().orElseThrow();
            admin.deleteRecords(Map.of(first, RecordsToDelete.beforeOffset(1))).all().get();
            long low = admin.listOffsets(Map.of(first, OffsetSpec.earliest())).all().get().get(first).offset();
            check(low == 1, "earliest offset after deleteRecords: " + low);
            List<Integer> nodes = admin.describeCluster().nodes().get().stream()
                    .map(n -> n.id()).collect(Collectors.toList());
            Map<Integer, Map<String, LogDirDescription>> dirs =
                    admin.describeLogDirs(nodes).allDescriptions().get();
            long listed = dirs.values().stream().flatMap(m -> m.values().stream())
                    .flatMap(d -> d.replicaInfos().keySet().stream())
                    .filter(tp -> tp.topic().equals(topic)).count();
            check(listed == 4, "describeLogDirs lists " + listed + " partitions of " + topic);
            admin.deleteConsumerGroups(List.of(GROUP)).all().get();
            admin.deleteTopics(List.of(topic)).all().get();
            System.out.println("admin: committed " + committedSum + ", log end " + ends
                    + ", deleteRecords to 1, describeLogDirs " + listed + " partitions, group and topic deleted");
            // Without an authorizer every cluster operation is allowed.
            Set<AclOperation> ops = admin.describeCluster(
                    new DescribeClusterOptions().includeAuthorizedOperations(true)).authorizedOperations().get();
            check(ops != null && ops.size() == 7 && ops.contains(AclOperation.IDEMPOTENT_WRITE),
                    "cluster authorized operations " + ops);
            System.out.println("admin: cluster authorized operations " + ops.size() + " " + ops);

            // Group configs (KIP-848): set, described with their sources,
            // refused outside the broker's bounds.
            ConfigResource g = new ConfigResource(ConfigResource.Type.GROUP, GROUP);
            AlterConfigOp session = new AlterConfigOp(
                    new ConfigEntry("consumer.session.timeout.ms", "50000"), AlterConfigOp.OpType.SET);
            admin.incrementalAlterConfigs(Map.of(g, List.of(session))).all().get();
            Config gc = admin.describeConfigs(List.of(g)).all().get().get(g);
            ConfigEntry set = gc.get("consumer.session.timeout.ms");
            check("50000".equals(set.value())
                    && set.source() == ConfigEntry.ConfigSource.DYNAMIC_GROUP_CONFIG, "group config set: " + set);
            ConfigEntry dflt = gc.get("consumer.heartbeat.interval.ms");
            check("5000".equals(dflt.value())
                    && dflt.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG, "group config default: " + dflt);
            AlterConfigOp tooShort = new AlterConfigOp(
                    new ConfigEntry("consumer.session.timeout.ms", "10000"), AlterConfigOp.OpType.SET);
            String refused = null;
            try {
                admin.incrementalAlterConfigs(Map.of(g, List.of(tooShort))).all().get();
            } catch (java.util.concurrent.ExecutionException e) {
                refused = e.getCause().getClass().getSimpleName();
            }
            check("InvalidConfigurationException".equals(refused), "out of bounds refused: " + refused);
            AlterConfigOp delete = new AlterConfigOp(
                    new ConfigEntry("consumer.session.timeout.ms", ""), AlterConfigOp.OpType.DELETE);
            admin.incrementalAlterConfigs(Map.of(g, List.of(delete))).all().get();
            ConfigEntry back = admin.describeConfigs(List.of(g)).all().get().get(g).get("consumer.session.timeout.ms");
            check("45000".equals(back.value()), "group config deleted: " + back);
            System.out.println("admin: group configs set, described (" + gc.entries().size()
                    + " keys), refused out of bounds with " + refused + ", deleted");
        }

        // Transactions are not served yet: initTransactions() must fail at
        // once with the broker's reason, not wait out max.block.ms.
        Properties t = new Properties();
        t.putAll(common);
        t.put("transactional.id", "java-client-txn");
        t.put("max.block.ms", "60000");
        t.put("key.serializer", StringSerializer.class.getName());
        t.put("value.serializer", StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(t)) {
            long start = System.nanoTime();
            String refusal = null;
            try {
                producer.initTransactions();
            } catch (KafkaException e) {
                refusal = e.getClass().getSimpleName() + ": " + e.getMessage();
            }
            long ms = (System.nanoTime() - start) / 1_000_000;
            check(refusal != null, "initTransactions must be refused");
            System.out.println("transactions: initTransactions refused after " + ms + " ms with " + refusal);
        }
    }

    static int partitions(Admin admin, String topic) throws Exception {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        return d.partitions().size();
    }
}
