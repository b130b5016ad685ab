package io.greenflow.theodolite.uc4;

import io.greenflow.theodolite.common.ActivePowerRecordSerde;
import io.greenflow.theodolite.common.Env;
import io.greenflow.theodolite.common.RecordTimestamp;
import io.greenflow.theodolite.common.StreamsApp;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * Theodolite's UC4, "hierarchical aggregation": sensors' readings summed up a hierarchy of
 * groups, every emit period.
 *
 * <ol>
 *   <li>The sensor registry (topic {@code KAFKA_CONFIGURATION_TOPIC}, configuration; key a
 *       4-byte int event, 0 = SENSOR_REGISTRY_CHANGED, value the registry's JSON, see
 *       {@link SensorRegistry}) becomes a table node → its direct parent groups
 *       ({@link ParentsProcessor}, repartitioned like the input).
 *   <li>The input records (topic {@code KAFKA_INPUT_TOPIC}, input, Kafka key = sensor) and the
 *       groups' own aggregates fed back (topic {@code KAFKA_FEEDBACK_TOPIC},
 *       aggregation-feedback, their {@code sumInW} as the group's value) are joined with that
 *       table and duplicated once per parent, keyed (parent, child). A child without parents
 *       in the registry (the root, or an unknown sensor) is dropped.
 *   <li>Per (parent, child), the last value (the newest by timestamp) in tumbling windows of
 *       event time of {@code EMIT_PERIOD_MS} (5000) with a grace period of
 *       {@code GRACE_PERIOD_MS} (5000): records for a window closed longer than that in stream
 *       time are dropped.
 *   <li>Per (parent, window), the count and sum of its children's last values (a table
 *       aggregation: a child's replaced value is subtracted, its new one added), written as
 *       {@link AggregatedActivePowerRecord} JSON with key = the group to {@code
 *       KAFKA_OUTPUT_TOPIC} (output) and to the feedback topic, where it is a child's value for
 *       the group's own parents: so a root over groups over sensors sums the groups' sums, and
 *       deeper hierarchies one level per round trip.
 * </ol>
 *
 * <p>Like UC2 the output is an update stream: a window's aggregate may be written more than
 * once (at most once per commit interval while cached), the last being final. The aggregate's
 * timestamp is its window's start, so a group's aggregate falls into the same window at its
 * parent. The input and feedback topics must have the same number of partitions (they are
 * joined with one table); the feedback topic is created so at start when missing. The input
 * must be partitioned by its key with Kafka's default partitioner (murmur2, as Java producers
 * and the load generator do; librdkafka's clients need {@code partitioner=murmur2_random}),
 * since the registry table is partitioned so by Kafka Streams. Internal topics (prefixed with
 * the application id): {@code parents-repartition}, {@code parent-child-repartition},
 * {@code group-window-repartition} and the changelogs of the stores {@code parents},
 * {@code last-values}, {@code group-sums}. Commit
 * interval 1000 ms unless {@code COMMIT_INTERVAL_MS}; the rest of the environment:
 * {@link StreamsApp}.
 */
public final class Uc4Application {
  private Uc4Application() {}

  public static void main(String[] args) throws Exception {
    String input = Env.get("KAFKA_INPUT_TOPIC", "input");
    String output = Env.get("KAFKA_OUTPUT_TOPIC", "output");
    String configuration = Env.get("KAFKA_CONFIGURATION_TOPIC", "configuration");
    String feedback = Env.get("KAFKA_FEEDBACK_TOPIC", "aggregation-feedback");
    long emitMs = Env.getLong("EMIT_PERIOD_MS", 5000);
    long graceMs = Env.getLong("GRACE_PERIOD_MS", 5000);

    Topology topology = topology(input, output, configuration, feedback, emitMs, graceMs);
    if (Env.getBool("UC4_PRINT_TOPOLOGY", false)) {
      System.err.println(topology.describe());
    }
    ensureFeedbackTopic(input, feedback);
    StreamsApp.run(4, topology, 1000L, new Properties());
  }

  static Topology topology(
      String input,
      String output,
      String configuration,
      String feedback,
      long emitMs,
      long graceMs) {
    StreamsBuilder builder = new StreamsBuilder();
    Serde<LastValue> lastValue = LastValue.serde();
    Serde<AggregatedActivePowerRecord> aggregated = AggregatedActivePowerRecord.serde();
    Serde<Windowed<String>> windowed = WindowedSerdes.timeWindowedSerdeFrom(String.class, emitMs);

    KTable<String, String> parents =
        builder.stream(configuration, Consumed.with(Serdes.Integer(), Serdes.String()))
            .process(ParentsProcessor::new, Named.as("registry-parents"))
            .toTable(
                Named.as("parents"),
                Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("parents")
                    .withKeySerde(Serdes.String())
                    .withValueSerde(Serdes.String()));

    KStream<String, LastValue> sensors =
        builder.stream(
                input,
                Consumed.with(
                        Serdes.String(), new ActivePowerRecordSerde(StreamsApp.registryUrl()))
                    .withTimestampExtractor(new RecordTimestamp()))
            .mapValues(r -> new LastValue(r.identifier(), r.timestamp(), r.valueInW()));
    KStream<String, LastValue> groups =
        builder.stream(
                feedback,
                Consumed.with(Serdes.String(), aggregated)
                    .withTimestampExtractor(new RecordTimestamp()))
            .mapValues(a -> new LastValue(a.identifier(), a.timestamp(), a.sumInW()));

    KTable<Windowed<String>, AggregatedActivePowerRecord> sums =
        sensors
            .merge(groups)
            .join(parents, (value, parentList) -> new Routed(value, parentList))
            .flatMap(
                (child, routed) -> {
                  List<KeyValue<String, LastValue>> out = new ArrayList<>();
                  for (String parent : routed.parents().split(",")) {
                    if (!parent.isEmpty()) {
                      out.add(KeyValue.pair(parent + ';' + child, routed.value()));
                    }
                  }
                  return out;
                })
            .groupByKey(Grouped.with("parent-child", Serdes.String(), lastValue))
            .windowedBy(
                TimeWindows.ofSizeAndGrace(Duration.ofMillis(emitMs), Duration.ofMillis(graceMs)))
            .reduce(
                LastValue::newer,
                Materialized.<String, LastValue, WindowStore<Bytes, byte[]>>as("last-values")
                    .withKeySerde(Serdes.String())
                    .withValueSerde(lastValue))
            .groupBy(
                (parentChild, value) ->
                    KeyValue.pair(
                        new Windowed<>(parentOf(parentChild.key()), parentChild.window()), value),
                Grouped.with("group-window", windowed, lastValue))
            .aggregate(
                () -> Sum.EMPTY,
                (group, value, sum) -> sum.plus(value),
                (group, value, sum) -> sum.minus(value),
                Materialized.<Windowed<String>, Sum, KeyValueStore<Bytes, byte[]>>as("group-sums")
                    .withKeySerde(windowed)
                    .withValueSerde(Sum.serde()))
            .mapValues(
                (group, sum) ->
                    sum == null || sum.count() == 0
                        ? null
                        : new AggregatedActivePowerRecord(
                            group.key(),
                            group.window().start(),
                            group.window().end(),
                            sum.count(),
                            sum.sumInW(),
                            sum.sumInW() / sum.count()));

    KStream<String, AggregatedActivePowerRecord> results =
        sums.toStream()
            .filter((group, record) -> record != null)
            .map((group, record) -> KeyValue.pair(group.key(), record));
    results.to(output, Produced.with(Serdes.String(), aggregated));
    results.to(feedback, Produced.with(Serdes.String(), aggregated));
    return builder.build();
  }

  /** The parent of a {@code "parent;child"} key. */
  static String parentOf(String parentChild) {
    return parentChild.substring(0, parentChild.indexOf(';'));
  }

  /** A child's value with its parents, between the join and the duplication. */
  record Routed(LastValue value, String parents) {}

  /**
   * Creates the feedback topic with the input topic's partitions if it is missing; fails when
   * both exist with different partition counts (Kafka Streams could not join them).
   */
  static void ensureFeedbackTopic(String input, String feedback) throws Exception {
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, StreamsApp.bootstrapServers());
    try (Admin admin = Admin.create(props)) {
      Map<String, TopicDescription> found = new HashMap<>();
      for (String topic : List.of(input, feedback)) {
        try {
          found.putAll(admin.describeTopics(Set.of(topic)).allTopicNames().get());
        } catch (ExecutionException e) {
          if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
            throw e;
          }
        }
      }
      TopicDescription in = found.get(input);
      TopicDescription back = found.get(feedback);
      if (in == null) {
        return; // Kafka Streams reports the missing source topic
      }
      int partitions = in.partitions().size();
      if (back == null) {
        try {
          admin
              .createTopics(List.of(new NewTopic(feedback, Optional.of(partitions), Optional.empty())))
              .all()
              .get();
        } catch (ExecutionException e) {
          if (!(e.getCause() instanceof TopicExistsException)) {
            throw e;
          }
        }
      } else if (back.partitions().size() != partitions) {
        System.err.println(
            "greenflow-theodolite: topic " + feedback + " has " + back.partitions().size()
                + " partitions and " + input + " " + partitions
                + ": UC4 joins them with one table, they need the same number");
        System.exit(1);
      }
    }
  }
}
