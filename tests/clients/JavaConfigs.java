// Config answers of a broker, printed one per line as "KEY\tANSWER" so a
// test can compare shardlog's with stock Kafka's field by field
// (tests/kafka_configs.rs). Run in Java's source-file mode with Kafka's
// jars on the class path: java JavaConfigs.java BOOTSTRAP
//
// Lines:
//   alter|LEVEL|KEY=VALUE       OK, or the exception's class and message
//                               (LEVEL: cluster, node or topic; KEY APPEND
//                               VALUE and KEY SUBTRACT VALUE for those ops)
//   topic|KEY                   value, source, read-only, sensitive, type
//                               and synonyms of topic "cfg" afterwards
//   broker-key|KEY              type, read-only, sensitive of every key
//                               DescribeConfigs lists for the node
//   broker|KEY                  the node's value and source for the keys
//                               the alter cases touched
//   cluster|KEY                 the cluster-wide dynamic entries
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.config.ConfigResource;

public class JavaConfigs {
    static String syn(ConfigEntry e) {
        StringBuilder b = new StringBuilder("[");
        for (ConfigEntry.ConfigSynonym s : e.synonyms())
            b.append(s.name()).append('=').append(s.value()).append(' ').append(s.source()).append(';');
        return b.append(']').toString();
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(p)) {
            String node = admin.describeCluster().nodes().get().iterator().next().idString();
            admin.createTopics(List.of(new NewTopic("cfg", 1, (short) 1))).all().get();
            String[][] cases = {
                {"cluster", "sasl.kerberos.min.time.before.relogin", "60000"},
                {"node", "sasl.kerberos.min.time.before.relogin", "60000"},
                {"cluster", "num.io.threads", "4"},
                {"cluster", "log.dirs", "/tmp/x"},
                {"cluster", "bogus.key", "1"},
                {"cluster", "background.threads", "0"},
                {"cluster", "log.retention.ms", "abc"},
                {"cluster", "log.retention.ms", "100000"},
                {"node", "log.cleaner.threads", "2"},
                {"node", "log.segment.bytes", "2097152"},
                {"cluster", "ssl.keystore.location", "/tmp/ks"},
                {"cluster", "auto.create.topics.enable", "false"},
                {"cluster", "log.cleanup.policy", "nope"},
                {"topic", "segment.index.bytes", "2"},
                {"topic", "segment.index.bytes", "2048"},
                {"topic", "preallocate", "yes"},
                {"topic", "preallocate", "TRUE"},
                {"topic", "remote.storage.enable", "true"},
                {"topic", "bogus.key", "1"},
                {"topic", "compression.gzip.level", "0"},
                {"topic", "compression.zstd.level", "-5"},
                {"topic", "min.cleanable.dirty.ratio", "1.5"},
                {"topic", "message.timestamp.after.max.ms", "-1"},
                {"topic", "message.timestamp.before.max.ms", "86400000"},
                {"topic", "follower.replication.throttled.replicas", "0:1"},
                {"topic", "leader.replication.throttled.replicas", "*"},
                {"topic", "unclean.leader.election.enable", "true"},
                {"topic", "follower.replication.throttled.replicas", "1:2,2:3", "APPEND"},
                {"topic", "follower.replication.throttled.replicas", "0:1,2:3", "SUBTRACT"},
                {"topic", "compression.type", "lz4", "APPEND"},
                {"topic", "segment.ms", "1000", "SUBTRACT"},
            };
            for (String[] c : cases) {
                ConfigResource r = switch (c[0]) {
                    case "cluster" -> new ConfigResource(ConfigResource.Type.BROKER, "");
                    case "node" -> new ConfigResource(ConfigResource.Type.BROKER, node);
                    default -> new ConfigResource(ConfigResource.Type.TOPIC, "cfg");
                };
                String out;
                try {
                    AlterConfigOp.OpType type = c.length > 3 ? AlterConfigOp.OpType.valueOf(c[3]) : AlterConfigOp.OpType.SET;
                    AlterConfigOp op = new AlterConfigOp(new ConfigEntry(c[1], c[2]), type);
                    admin.incrementalAlterConfigs(Map.of(r, List.of(op))).all().get();
                    out = "OK";
                } catch (Exception e) {
                    Throwable t = e.getCause() == null ? e : e.getCause();
                    out = t.getClass().getSimpleName() + ": " + t.getMessage();
                }
                String verb = c.length > 3 ? " " + c[3] + " " : "=";
                System.out.println("alter|" + c[0] + "|" + c[1] + verb + c[2] + "\t" + out);
            }
            DescribeConfigsOptions syn = new DescribeConfigsOptions().includeSynonyms(true);
            ConfigResource t = new ConfigResource(ConfigResource.Type.TOPIC, "cfg");
            for (ConfigEntry e : admin.describeConfigs(List.of(t), syn).all().get().get(t).entries())
                System.out.println("topic|" + e.name() + "\t" + e.value() + " " + e.source() + " ro=" + e.isReadOnly()
                    + " sensitive=" + e.isSensitive() + " " + e.type() + " " + syn(e));
            ConfigResource b = new ConfigResource(ConfigResource.Type.BROKER, node);
            Config bc = admin.describeConfigs(List.of(b), syn).all().get().get(b);
            for (ConfigEntry e : bc.entries())
                System.out.println("broker-key|" + e.name() + "\t" + e.type() + " ro=" + e.isReadOnly()
                    + " sensitive=" + e.isSensitive());
            for (String[] c : cases) {
                ConfigEntry e = bc.get(c[1]);
                if (!c[0].equals("topic") && e != null)
                    System.out.println("broker|" + c[1] + "\t" + e.value() + " " + e.source() + " " + syn(e));
            }
            ConfigResource d = new ConfigResource(ConfigResource.Type.BROKER, "");
            for (ConfigEntry e : admin.describeConfigs(List.of(d)).all().get().get(d).entries())
                System.out.println("cluster|" + e.name() + "\t" + e.value() + " " + e.source() + " ro=" + e.isReadOnly()
                    + " sensitive=" + e.isSensitive() + " " + e.type());
        }
    }
}
