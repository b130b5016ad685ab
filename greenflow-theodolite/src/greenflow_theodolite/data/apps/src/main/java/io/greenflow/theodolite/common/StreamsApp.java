package io.greenflow.theodolite.common;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;

/**
 * Runs a use case's topology the same way for every use case, configured from the
 * environment (Theodolite's names):
 *
 * <ul>
 *   <li>{@code KAFKA_BOOTSTRAP_SERVERS} (localhost:9092), {@code SCHEMA_REGISTRY_URL}
 *       (http://localhost:8081, see {@link #registryUrl()});
 *   <li>{@code APPLICATION_ID} ({@code theodolite-ucN-application-0.0.1}: also the consumer
 *       group and the prefix of the internal topics);
 *   <li>{@code NUM_STREAM_THREADS} (1), {@code COMMIT_INTERVAL_MS} (the use case's default,
 *       else Kafka Streams'), {@code CACHE_MAX_BYTES_BUFFERING} (Kafka Streams' default when
 *       unset or negative; it sets {@code statestore.cache.max.bytes}, the setting's name since
 *       Kafka 3.4);
 *   <li>{@code STATE_DIR} (a new temporary directory, deleted at exit, when unset).
 * </ul>
 *
 * <p>Prints {@code greenflow-theodolite-app-started uc=N} once the streams reach RUNNING; on
 * SIGTERM (or SIGINT) closes them and exits 0; if a stream thread dies, prints the cause to
 * stderr, closes and exits 1.
 */
public final class StreamsApp {
  private StreamsApp() {}

  public static String bootstrapServers() {
    return Env.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092");
  }

  public static String registryUrl() {
    return Env.get("SCHEMA_REGISTRY_URL", "http://localhost:8081");
  }

  public static String applicationId(int uc) {
    return Env.get("APPLICATION_ID", "theodolite-uc" + uc + "-application-0.0.1");
  }

  /**
   * Runs {@code topology} until SIGTERM; never returns. {@code defaultCommitMs} is the use
   * case's commit interval when {@code COMMIT_INTERVAL_MS} is unset (null: Kafka Streams').
   */
  public static void run(int uc, Topology topology, Long defaultCommitMs, Properties extra) {
    run(uc, topology, defaultCommitMs, extra, () -> {});
  }

  /** As {@link #run(int, Topology, Long, Properties)}, running {@code afterClose} last. */
  public static void run(
      int uc, Topology topology, Long defaultCommitMs, Properties extra, Runnable afterClose) {
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId(uc));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers());
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Env.getInt("NUM_STREAM_THREADS", 1));
    String commit = Env.optional("COMMIT_INTERVAL_MS");
    if (commit != null) {
      props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Env.getLong("COMMIT_INTERVAL_MS", 0));
    } else if (defaultCommitMs != null) {
      props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, defaultCommitMs);
    }
    long cache = Env.getLong("CACHE_MAX_BYTES_BUFFERING", -1);
    if (cache >= 0) {
      props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, cache);
    }
    Path tempState = null;
    String stateDir = Env.optional("STATE_DIR");
    if (stateDir == null) {
      try {
        tempState = Files.createTempDirectory("greenflow-theodolite-uc" + uc + "-");
      } catch (IOException e) {
        throw new IllegalStateException("cannot create a state directory", e);
      }
      stateDir = tempState.toString();
    }
    props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    props.putAll(extra);

    KafkaStreams streams = new KafkaStreams(topology, props);
    CountDownLatch done = new CountDownLatch(1);
    AtomicInteger status = new AtomicInteger(0);
    AtomicBoolean started = new AtomicBoolean();
    streams.setStateListener(
        (now, before) -> {
          if (now == KafkaStreams.State.RUNNING && started.compareAndSet(false, true)) {
            Out.status("greenflow-theodolite-app-started uc=" + uc);
          } else if (now == KafkaStreams.State.ERROR) {
            status.compareAndSet(0, 1);
            done.countDown();
          }
        });
    streams.setUncaughtExceptionHandler(
        e -> {
          System.err.println("greenflow-theodolite: a stream thread failed: " + e);
          e.printStackTrace();
          status.set(1);
          return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    Signals.onStop(done::countDown);
    streams.start();
    try {
      done.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    streams.close(Duration.ofSeconds(30));
    afterClose.run();
    if (tempState != null) {
      deleteTree(tempState);
    }
    Out.status("greenflow-theodolite-app-stopped uc=" + uc + " status=" + status.get());
    System.exit(status.get());
  }

  private static void deleteTree(Path root) {
    try {
      Files.walkFileTree(
          root,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
                throws IOException {
              Files.deleteIfExists(file);
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException exc)
                throws IOException {
              Files.deleteIfExists(dir);
              return FileVisitResult.CONTINUE;
            }
          });
    } catch (IOException e) {
      System.err.println("greenflow-theodolite: could not delete " + root + ": " + e);
    }
  }
}
