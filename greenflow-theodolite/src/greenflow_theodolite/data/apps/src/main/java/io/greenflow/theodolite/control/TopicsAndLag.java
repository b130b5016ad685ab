package io.greenflow.theodolite.control;

import io.greenflow.theodolite.common.Out;
import io.greenflow.theodolite.common.Signals;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;

/**
 * A run's Kafka administration from inside a cluster, where the brokers' addresses resolve
 * (GreenFlow runs it as a Job of the Kafka target's tools image, this jar mounted from a
 * ConfigMap, only kafka-clients needed). Two commands:
 *
 * <pre>
 * prepare BOOTSTRAP GROUP INTERVAL_MS TOPIC:PARTITIONS... [-- SAMPLED_TOPIC...]
 *     forgets the group (its members removed, then the group deleted: Kafka Streams does not
 *     leave its group on close, so a previous run's instances would hold their partitions
 *     for a session timeout), deletes the topics if present, creates them (the brokers'
 *     default replication),
 *     prints "greenflow-topics-ready", then every INTERVAL_MS one line
 *     "greenflow-offsets t_ms=T end.TOPIC=N... lag=L members=M" (end offsets of the sampled
 *     topics, summed over partitions; L: the group's lag on the first sampled topic, a
 *     partition it never committed counting whole; M: the group's members, one per stream
 *     thread) until SIGTERM (exit 0).
 * clean BOOTSTRAP GROUP PREFIX TOPIC...
 *     forgets the group, deletes the topics and every topic whose name starts with PREFIX
 *     (Kafka Streams' internal ones); prints "greenflow-topics-deleted n=N".
 * </pre>
 */
public final class TopicsAndLag {
  private static final long TIMEOUT_S = 60;

  private TopicsAndLag() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      throw new IllegalArgumentException("usage: prepare|clean BOOTSTRAP ...");
    }
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) TIMEOUT_S * 1000);
    try (Admin admin = Admin.create(props)) {
      switch (args[0]) {
        case "prepare" -> prepare(admin, args);
        case "clean" -> clean(admin, args);
        default -> throw new IllegalArgumentException("unknown command " + args[0]);
      }
    }
    System.exit(0);
  }

  private static void prepare(Admin admin, String[] args) throws Exception {
    String group = args[2];
    long intervalMs = Long.parseLong(args[3]);
    Map<String, Integer> topics = new LinkedHashMap<>();
    List<String> sampled = new ArrayList<>();
    boolean afterDash = false;
    for (int i = 4; i < args.length; i++) {
      if (args[i].equals("--")) {
        afterDash = true;
      } else if (afterDash) {
        sampled.add(args[i]);
      } else {
        String[] tp = args[i].split(":");
        topics.put(tp[0], Integer.parseInt(tp[1]));
      }
    }
    forget(admin, group);
    delete(admin, topics.keySet());
    List<NewTopic> create = new ArrayList<>();
    topics.forEach((name, partitions) -> create.add(new NewTopic(name, java.util.Optional.of(partitions), java.util.Optional.empty())));
    admin.createTopics(create).all().get(TIMEOUT_S, TimeUnit.SECONDS);
    Out.status("greenflow-topics-ready topics=" + String.join(",", topics.keySet()));
    if (sampled.isEmpty()) {
      return;
    }
    CountDownLatch stop = new CountDownLatch(1);
    Signals.onStop(stop::countDown);
    Map<String, List<TopicPartition>> partitions = new HashMap<>();
    for (String t : sampled) {
      TopicDescription d = admin.describeTopics(List.of(t)).allTopicNames().get(TIMEOUT_S, TimeUnit.SECONDS).get(t);
      partitions.put(t, d.partitions().stream().map(p -> new TopicPartition(t, p.partition())).toList());
    }
    long next = System.currentTimeMillis();
    do {
      StringBuilder line = new StringBuilder("greenflow-offsets t_ms=").append(System.currentTimeMillis());
      Map<TopicPartition, Long> firstEnds = null;
      for (String t : sampled) {
        Map<TopicPartition, Long> ends = ends(admin, partitions.get(t));
        if (firstEnds == null) {
          firstEnds = ends;
        }
        line.append(" end.").append(t).append('=').append(ends.values().stream().mapToLong(Long::longValue).sum());
      }
      Map<TopicPartition, OffsetAndMetadata> committed = committed(admin, group);
      long lag = 0;
      for (Map.Entry<TopicPartition, Long> e : firstEnds.entrySet()) {
        OffsetAndMetadata c = committed.get(e.getKey());
        lag += Math.max(0, e.getValue() - (c == null ? 0 : c.offset()));
      }
      int members = members(admin, group);
      Out.status(line.append(" lag=").append(lag).append(" members=").append(members).toString());
      // Every interval from the first; a late sample moves the schedule, never doubles up.
      next = Math.max(next + intervalMs, System.currentTimeMillis());
    } while (!stop.await(Math.max(0, next - System.currentTimeMillis()), TimeUnit.MILLISECONDS));
  }

  /** Removes every member of the group, then the group (with its commits); none: nothing. */
  private static void forget(Admin admin, String group) throws Exception {
    try {
      admin.removeMembersFromConsumerGroup(group, new RemoveMembersFromConsumerGroupOptions())
          .all().get(TIMEOUT_S, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      // No such group, or no member left: nothing to remove.
    }
    try {
      admin.deleteConsumerGroups(List.of(group)).all().get(TIMEOUT_S, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (!(e.getCause() instanceof GroupIdNotFoundException)) {
        Out.status("greenflow-group-kept group=" + group + " reason=" + e.getCause());
      }
    }
  }

  /** The group's commits; none while the group does not exist yet. */
  private static Map<TopicPartition, OffsetAndMetadata> committed(Admin admin, String group) throws Exception {
    try {
      Map<TopicPartition, OffsetAndMetadata> got =
          admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(TIMEOUT_S, TimeUnit.SECONDS);
      return got == null ? Map.of() : got;
    } catch (ExecutionException e) {
      if (e.getCause() instanceof GroupIdNotFoundException) {
        return Map.of();
      }
      throw e;
    }
  }

  /** The group's members (Kafka 4's group coordinator: not found until the first joins). */
  private static int members(Admin admin, String group) throws Exception {
    try {
      return admin.describeConsumerGroups(List.of(group)).all().get(TIMEOUT_S, TimeUnit.SECONDS).get(group).members().size();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof GroupIdNotFoundException) {
        return 0;
      }
      throw e;
    }
  }

  private static Map<TopicPartition, Long> ends(Admin admin, Collection<TopicPartition> parts) throws Exception {
    Map<TopicPartition, OffsetSpec> ask = parts.stream().collect(Collectors.toMap(p -> p, p -> OffsetSpec.latest()));
    Map<TopicPartition, ListOffsetsResultInfo> got = admin.listOffsets(ask).all().get(TIMEOUT_S, TimeUnit.SECONDS);
    Map<TopicPartition, Long> out = new HashMap<>();
    got.forEach((tp, info) -> out.put(tp, info.offset()));
    return out;
  }

  private static void clean(Admin admin, String[] args) throws Exception {
    forget(admin, args[2]);
    String prefix = args[3];
    List<String> names = new ArrayList<>(List.of(args).subList(4, args.length));
    for (String t : admin.listTopics().names().get(TIMEOUT_S, TimeUnit.SECONDS)) {
      if (!prefix.isEmpty() && t.startsWith(prefix) && !names.contains(t)) {
        names.add(t);
      }
    }
    int n = delete(admin, names);
    Out.status("greenflow-topics-deleted n=" + n);
  }

  /** Deletes those of {@code topics} that exist and waits until the brokers forget them. */
  private static int delete(Admin admin, Collection<String> topics) throws Exception {
    Set<String> present = admin.listTopics().names().get(TIMEOUT_S, TimeUnit.SECONDS);
    List<String> gone = topics.stream().filter(present::contains).toList();
    if (gone.isEmpty()) {
      return 0;
    }
    try {
      admin.deleteTopics(gone).all().get(TIMEOUT_S, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      if (!(e.getCause() instanceof UnknownTopicOrPartitionException)) {
        throw e;
      }
    }
    long deadline = System.currentTimeMillis() + TIMEOUT_S * 1000;
    while (System.currentTimeMillis() < deadline) {
      Set<String> now = admin.listTopics().names().get(TIMEOUT_S, TimeUnit.SECONDS);
      if (gone.stream().noneMatch(now::contains)) {
        return gone.size();
      }
      Thread.sleep(200);
    }
    throw new IllegalStateException("topics " + gone + " still listed " + TIMEOUT_S + " s after their deletion");
  }
}
