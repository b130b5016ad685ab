package io.greenflow.theodolite.loadgen;

import io.greenflow.theodolite.common.ActivePowerRecord;
import io.greenflow.theodolite.common.Env;
import io.greenflow.theodolite.common.Out;
import io.greenflow.theodolite.common.SchemaRegistryClient;
import io.greenflow.theodolite.common.Schemas;
import io.greenflow.theodolite.common.Signals;
import io.greenflow.theodolite.common.WireFormat;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.IntegerSerializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A load generator with Theodolite's environment contract: simulated power sensors
 * {@code s_0 … s_<N-1>}, each sending an ActivePowerRecord (timestamp = wall clock ms,
 * {@code valueInW} = {@code VALUE}) every {@code PERIOD_MS}, at a fixed rate from a random
 * initial delay in [0, PERIOD_MS): an open workload of N · 1000 / PERIOD_MS records/s over
 * all instances. Kafka key = the sensor's identifier, Kafka timestamp = the record's; value in
 * the schema registry's wire format, the schema registered under {@code <topic>-value}.
 *
 * <p>Environment: {@code KAFKA_BOOTSTRAP_SERVERS} (localhost:9092), {@code KAFKA_INPUT_TOPIC}
 * (input), {@code SCHEMA_REGISTRY_URL} (http://localhost:8081), {@code NUM_SENSORS} (10),
 * {@code PERIOD_MS} (1000), {@code VALUE} (10), {@code THREADS} (4), {@code KAFKA_BATCH_SIZE},
 * {@code KAFKA_LINGER_MS}, {@code KAFKA_BUFFER_MEMORY} (the producer's defaults when unset);
 * UC4: {@code SEND_REGISTRY} (false) makes instance 0 publish the sensor registry of the N sensors under
 * {@code NUM_NESTED_GROUPS} (1) levels of groups ({@link SensorRegistryBuilder}) on
 * {@code KAFKA_CONFIGURATION_TOPIC} (configuration; key the int 0, SENSOR_REGISTRY_CHANGED)
 * first, then waits {@code SLEEP_PERIOD_MS} (30000). GreenFlow's additions: {@code INSTANCES}
 * (1) and {@code INSTANCE_INDEX} (0): this instance sends for the sensors i with i % INSTANCES
 * == INSTANCE_INDEX (Theodolite splits the keys with Hazelcast instead); {@code INSTANCE_INDEX}
 * falls back to {@code JOB_COMPLETION_INDEX}, which Kubernetes sets in an Indexed Job's pods.
 *
 * <p>Prints {@code greenflow-theodolite-generator-start t=<unix ms> sensors=<this instance's>
 * rate=<records/s> schema_id=<id>} once sending starts, then every second
 * {@code greenflow-theodolite-generator t=<unix ms> sent=<total> errors=<total>
 * behind_ms=<max over sensors of how late its next send is>} (sent = records handed to the
 * producer, errors = sends that failed); on SIGTERM stops sending, flushes, prints
 * {@code greenflow-theodolite-generator-end sent=<total> errors=<total>} and exits 0.
 */
public final class LoadGenerator {
  private LoadGenerator() {}

  /** One sensor's schedule. */
  private static final class Sensor implements Runnable {
    final String id;
    final long periodNanos;
    volatile long nextDueNanos;
    final Sender sender;

    Sensor(String id, long periodNanos, long firstDueNanos, Sender sender) {
      this.id = id;
      this.periodNanos = periodNanos;
      this.nextDueNanos = firstDueNanos;
      this.sender = sender;
    }

    @Override
    public void run() {
      nextDueNanos += periodNanos;
      sender.send(id);
    }
  }

  /** Encodes and sends one record; counts. */
  private static final class Sender {
    final KafkaProducer<String, byte[]> producer;
    final String topic;
    final int schemaId;
    final double value;
    final LongAdder sent = new LongAdder();
    final LongAdder errors = new LongAdder();
    final AtomicReference<String> lastError = new AtomicReference<>();
    final Callback callback;

    Sender(KafkaProducer<String, byte[]> producer, String topic, int schemaId, double value) {
      this.producer = producer;
      this.topic = topic;
      this.schemaId = schemaId;
      this.value = value;
      this.callback =
          (meta, e) -> {
            if (e != null) {
              errors.increment();
              lastError.set(e.toString());
            }
          };
    }

    void send(String id) {
      long now = System.currentTimeMillis();
      byte[] bytes = WireFormat.encode(schemaId, new ActivePowerRecord(id, now, value));
      try {
        producer.send(new ProducerRecord<>(topic, null, now, id, bytes), callback);
        sent.increment();
      } catch (RuntimeException e) {
        errors.increment();
        lastError.set(e.toString());
      }
    }
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = Env.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092");
    String topic = Env.get("KAFKA_INPUT_TOPIC", "input");
    String registryUrl = Env.get("SCHEMA_REGISTRY_URL", "http://localhost:8081");
    int numSensors = Env.getInt("NUM_SENSORS", 10);
    long periodMs = Env.getLong("PERIOD_MS", 1000);
    double value = Env.getDouble("VALUE", 10);
    int threads = Env.getInt("THREADS", 4);
    int instances = Env.getInt("INSTANCES", 1);
    int index = Env.getInt("INSTANCE_INDEX", Env.getInt("JOB_COMPLETION_INDEX", 0));
    int nestedGroups = Env.getInt("NUM_NESTED_GROUPS", 1);
    boolean sendRegistry = Env.getBool("SEND_REGISTRY", false);
    long sleepMs = Env.getLong("SLEEP_PERIOD_MS", 30_000);
    String configTopic = Env.get("KAFKA_CONFIGURATION_TOPIC", "configuration");
    if (numSensors < 1 || periodMs < 1 || threads < 1 || instances < 1) {
      throw new IllegalArgumentException(
          "NUM_SENSORS, PERIOD_MS, THREADS and INSTANCES must be >= 1");
    }
    if (index < 0 || index >= instances) {
      throw new IllegalArgumentException(
          "INSTANCE_INDEX=" + index + " is not in [0, INSTANCES=" + instances + ")");
    }

    CountDownLatch stop = new CountDownLatch(1);
    Signals.onStop(stop::countDown);

    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    putIfSet(props, ProducerConfig.BATCH_SIZE_CONFIG, "KAFKA_BATCH_SIZE");
    putIfSet(props, ProducerConfig.LINGER_MS_CONFIG, "KAFKA_LINGER_MS");
    putIfSet(props, ProducerConfig.BUFFER_MEMORY_CONFIG, "KAFKA_BUFFER_MEMORY");

    if (sendRegistry && index == 0) {
      publishRegistry(bootstrap, configTopic, numSensors, nestedGroups);
      if (stop.await(sleepMs, TimeUnit.MILLISECONDS)) {
        Out.status("greenflow-theodolite-generator-end sent=0 errors=0");
        System.exit(0);
      }
    }

    int schemaId =
        new SchemaRegistryClient(registryUrl)
            .registerWithRetry(topic + "-value", Schemas.ACTIVE_POWER_RECORD, 60_000);
    KafkaProducer<String, byte[]> producer = new KafkaProducer<>(props);
    Sender sender = new Sender(producer, topic, schemaId, value);

    ScheduledThreadPoolExecutor executor =
        new ScheduledThreadPoolExecutor(
            threads,
            r -> {
              Thread t = new Thread(r, "sensor-sender");
              t.setDaemon(true);
              return t;
            });
    executor.setRemoveOnCancelPolicy(true);
    long periodNanos = TimeUnit.MILLISECONDS.toNanos(periodMs);
    List<Sensor> mine = new ArrayList<>();
    long base = System.nanoTime();
    for (int i = index; i < numSensors; i += instances) {
      long delay = ThreadLocalRandom.current().nextLong(periodNanos);
      Sensor s = new Sensor("s_" + i, periodNanos, base + delay, sender);
      mine.add(s);
      executor.scheduleAtFixedRate(s, base + delay - System.nanoTime(), periodNanos, TimeUnit.NANOSECONDS);
    }
    Out.status(
        "greenflow-theodolite-generator-start t=" + System.currentTimeMillis() + " sensors="
            + mine.size() + " rate=" + (mine.size() * 1000.0 / periodMs) + " schema_id="
            + schemaId);

    ScheduledExecutorService reporter =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "generator-report");
              t.setDaemon(true);
              return t;
            });
    reporter.scheduleAtFixedRate(
        () -> {
          long now = System.nanoTime();
          long behind = 0;
          for (Sensor s : mine) {
            behind = Math.max(behind, now - s.nextDueNanos);
          }
          Out.status(
              "greenflow-theodolite-generator t=" + System.currentTimeMillis() + " sent="
                  + sender.sent.sum() + " errors=" + sender.errors.sum() + " behind_ms="
                  + TimeUnit.NANOSECONDS.toMillis(behind));
          String err = sender.lastError.getAndSet(null);
          if (err != null) {
            System.err.println("greenflow-theodolite-generator: send failed: " + err);
          }
        },
        1000,
        1000,
        TimeUnit.MILLISECONDS);

    stop.await();
    executor.shutdown(); // cancels the schedules, lets a send under way finish
    executor.awaitTermination(10, TimeUnit.SECONDS);
    reporter.shutdownNow();
    producer.flush();
    producer.close();
    Out.status(
        "greenflow-theodolite-generator-end sent=" + sender.sent.sum() + " errors="
            + sender.errors.sum());
    System.exit(0);
  }

  private static void putIfSet(Properties props, String key, String env) {
    String v = Env.optional(env);
    if (v != null) {
      props.put(key, v);
    }
  }

  private static void publishRegistry(
      String bootstrap, String topic, int sensors, int levels) throws Exception {
    SensorRegistryBuilder registry = new SensorRegistryBuilder(sensors, levels);
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    try (KafkaProducer<Integer, String> producer =
        new KafkaProducer<>(props, new IntegerSerializer(), new StringSerializer())) {
      producer.send(new ProducerRecord<>(topic, 0, registry.toJson())).get(60, TimeUnit.SECONDS);
    }
    Out.status(
        "greenflow-theodolite-generator-registry t=" + System.currentTimeMillis() + " sensors="
            + sensors + " levels=" + levels + " children_per_group="
            + registry.childrenPerGroup());
  }
}
