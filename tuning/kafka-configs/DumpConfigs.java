// Writes the broker and topic config keys of the Kafka on the classpath as
// the TSV that src/config/kafka_keys.tsv holds: one line per key with its
// type, default, validator, whether it can change at runtime (broker keys)
// and its broker synonym (topic keys). Run by tuning/kafka-configs/dump.sh.
import java.util.*;
import org.apache.kafka.common.config.ConfigDef;

public class DumpConfigs {
    static String clean(String s) {
        return s.replace('\t', ' ').replace('\n', ' ');
    }

    static String def(ConfigDef.ConfigKey k) {
        if (!k.hasDefault()) return "\\N-required";
        if (k.defaultValue == null) return "\\N";
        return clean(ConfigDef.convertToString(k.defaultValue, k.type));
    }

    public static void main(String[] args) throws Exception {
        System.out.println("# Kafka " + org.apache.kafka.common.utils.AppInfoParser.getVersion()
            + " config keys, written by tuning/kafka-configs/dump.sh; do not edit by hand.");
        System.out.println("# scope\tname\ttype\tdefault\tvalidator\tmode\tsynonym");
        Set<String> dynamic = new TreeSet<>(scala.jdk.javaapi.CollectionConverters.asJava(
            kafka.server.DynamicBrokerConfig.AllDynamicConfigs()));
        Properties all = new Properties();
        for (String d : dynamic) all.setProperty(d, "x");
        Set<String> perBroker = new TreeSet<>(scala.jdk.javaapi.CollectionConverters.asJava(
            kafka.server.DynamicBrokerConfig$.MODULE$.kafka$server$DynamicBrokerConfig$$perBrokerConfigs(all)));
        ConfigDef broker = kafka.server.KafkaConfig.configDef();
        for (ConfigDef.ConfigKey k : new TreeMap<>(broker.configKeys()).values()) {
            if (k.internalConfig) continue;
            String mode = !dynamic.contains(k.name) ? "read-only"
                : perBroker.contains(k.name) ? "per-broker" : "cluster-wide";
            System.out.println(String.join("\t", "broker", k.name, k.type.name(), def(k),
                k.validator == null ? "" : clean(k.validator.toString()), mode, ""));
        }
        Map<String, String> synonyms =
            org.apache.kafka.server.config.ServerTopicConfigSynonyms.TOPIC_CONFIG_SYNONYMS;
        for (ConfigDef.ConfigKey k : new TreeMap<>(
                org.apache.kafka.storage.internals.log.LogConfig.configKeys()).values()) {
            if (k.internalConfig) continue;
            System.out.println(String.join("\t", "topic", k.name, k.type.name(), def(k),
                k.validator == null ? "" : clean(k.validator.toString()), "",
                synonyms.getOrDefault(k.name, "")));
        }
    }
}
