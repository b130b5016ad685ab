/*
 * GreenFlow's load generator for kafka-ingest: an open-loop producer whose send schedule is
 * fixed in advance (docs/kafka.md, "The load generator").
 *
 * Message k is due at t0 + k / rate, after a linear ramp from 0 to rate over --ramp-seconds
 * (so that the JVMs compile their hot paths under a growing load instead of building a
 * backlog at full rate while cold). The sender waits for a message's due time and never
 * sends before it, so it never goes above the asked rate to catch up. A message it could
 * not send within --max-lateness-ms of its due time (the producer blocked on a full buffer,
 * a GC pause, no CPU) is not sent at all: it is counted as missed, and how far behind its
 * schedule the sender is (missed sends as time, plus the lateness of the next one) is
 * reported. Latency is measured from each message's due time to its acknowledgement, so a
 * stall counts against every message it delayed (coordinated omission); a missed message
 * enters the latency distribution with the time it had waited when it was given up, a lower
 * bound of what it would have seen.
 *
 * Every --report-interval-ms it prints one line, for the interval that just ended:
 *
 *   greenflow-generator t=<epoch s> sent=<n> acked=<n> errors=<n> missed=<n>
 *     behind_ms=<ms> inflight=<n> n=<n> sum_us=<us> max_us=<us> h=<bucket:count,...>
 *
 * where h is a histogram of due-time-to-ack latency (and missed sends' waits) in
 * microseconds, log-linear buckets of 1/32 of a power of two (see bucket()), so that the
 * reader can merge the intervals of any window and of several producers exactly. It prints
 * greenflow-generator-start when the schedule starts (after the topic's metadata is in hand)
 * and greenflow-generator-end with the totals when every send is acknowledged.
 *
 * With --rate -1 it sends as fast as it can (a ceiling measurement): each message is due
 * when it is sent.
 */
package io.greenflow.kafka;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class ScheduledProducer {
    static final String PREFIX = "greenflow-generator";
    /** Sub-buckets per power of two: at most 1/32 (3.1 %) relative error. */
    static final int SUB_BITS = 5;
    static final int SUB = 1 << SUB_BITS;
    /** Below this many microseconds every value has its own bucket. */
    static final int LINEAR = 2 * SUB;
    static final int BUCKETS = LINEAR + (63 - 6 + 1) * SUB;
    /** Stack traces of the first send errors are printed, the rest only counted. */
    static final int ERRORS_PRINTED = 5;
    /**
     * The shortest wait: a message due sooner is sent up to this late rather than after a
     * wake-up of its own (each costs a few microseconds of CPU, next to the broker's on a small
     * host; the producer batches for linger.ms anyway). Its lateness counts in its latency.
     */
    static final long MIN_PARK_NS = 500_000;

    /** The bucket of a value in microseconds; the reader inverts it (greenflow_kafka.generator). */
    static int bucket(long us) {
        if (us < LINEAR) {
            return (int) Math.max(0, us);
        }
        int msb = 63 - Long.numberOfLeadingZeros(us);
        int shift = msb - SUB_BITS;
        int sub = (int) ((us >>> shift) & (SUB - 1));
        return LINEAR + (msb - 6) * SUB + sub;
    }

    /** One reporting interval's latencies; swapped out whole by the reporter. */
    static final class Interval {
        final long[] counts = new long[BUCKETS];
        long n;
        long sumUs;
        long maxUs;

        void record(long us) {
            counts[bucket(us)]++;
            n++;
            sumUs += us;
            if (us > maxUs) {
                maxUs = us;
            }
        }

        String histogram() {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < BUCKETS; i++) {
                if (counts[i] != 0) {
                    if (sb.length() > 0) {
                        sb.append(',');
                    }
                    sb.append(i).append(':').append(counts[i]);
                }
            }
            return sb.toString();
        }
    }

    // Settings.
    private final String topic;
    private final double rate;
    private final byte[] payload;
    private final long slots;
    private final long maxLateNs;
    private final double periodNs;
    private final double rampNs;
    /** Messages due during the ramp: rate × ramp / 2. */
    private final double rampSlots;
    private final KafkaProducer<byte[], byte[]> producer;

    // State shared with the callbacks (producer I/O thread) and the reporter.
    private final Object lock = new Object();
    private Interval interval = new Interval();
    // Written by one thread each (sent and next by the sender, ordered stores rather than
    // fenced ones: they are read only by the reporter); acked under the lock with the
    // histogram, by the producer's I/O thread.
    private final AtomicLong sent = new AtomicLong();
    private long acked;
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong missed = new AtomicLong();
    /** The schedule time the missed sends stood for (their slots are uneven in the ramp). */
    private final AtomicLong missedNs = new AtomicLong();
    private final AtomicLong next = new AtomicLong(); // the next slot to send
    private volatile long t0;
    private long lastSent;
    private long lastAcked;
    private long lastErrors;
    private long lastMissed;
    private final AtomicBoolean ended = new AtomicBoolean();

    ScheduledProducer(String topic, double rate, int size, double seconds, long records,
            double rampSeconds, long maxLateMs, Properties props) {
        this.topic = topic;
        this.rate = rate;
        this.payload = new byte[size];
        // Random capital letters, as Kafka's ProducerPerformance sends.
        Random random = new Random(0);
        for (int i = 0; i < size; i++) {
            payload[i] = (byte) (random.nextInt(26) + 65);
        }
        this.slots = records > 0
                ? records
                : Math.max(1, Math.round(rate * (Math.max(seconds, rampSeconds) - Math.max(0, rampSeconds) / 2)));
        this.periodNs = rate > 0 ? 1e9 / rate : 0;
        this.rampNs = rate > 0 ? Math.max(0, rampSeconds) * 1e9 : 0;
        this.rampSlots = rate * Math.max(0, rampSeconds) / 2;
        this.maxLateNs = maxLateMs * 1_000_000L;
        this.producer = new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer());
    }

    /**
     * When message k is due: the messages due by time t are rate·t²/(2·ramp) during the ramp,
     * then rate·ramp/2 + rate·(t − ramp).
     */
    long due(long k) {
        if (k < rampSlots) {
            return t0 + (long) Math.sqrt(2 * rampNs * k * periodNs);
        }
        return t0 + (long) (rampNs + (k - rampSlots) * periodNs);
    }

    /** The first message due at or after ``t`` (the inverse of due()). */
    long slotAt(long t) {
        double since = t - t0;
        if (since <= 0) {
            return 0;
        }
        double k = since < rampNs
                ? since * since / (2 * rampNs * periodNs)
                : rampSlots + (since - rampNs) / periodNs;
        return (long) Math.ceil(k);
    }

    void ack(long us) {
        synchronized (lock) {
            interval.record(us);
            acked++;
        }
    }

    /** How far behind its schedule the sender is, in ms: missed sends as time, plus lateness. */
    double behindMs(long now) {
        if (rate <= 0) {
            return 0;
        }
        long k = next.get();
        double late = k < slots ? Math.max(0, now - due(k)) : 0;
        return (missedNs.get() + late) / 1e6;
    }

    long ackedTotal() {
        synchronized (lock) {
            return acked;
        }
    }

    static String now() {
        Instant t = Instant.now();
        return String.format(Locale.ROOT, "%d.%06d", t.getEpochSecond(), t.getNano() / 1000);
    }

    void report() {
        Interval done;
        long a;
        synchronized (lock) {
            done = interval;
            interval = new Interval();
            a = acked;
        }
        long s = sent.get(), e = errors.get(), m = missed.get();
        String line = String.format(Locale.ROOT,
                "%s t=%s sent=%d acked=%d errors=%d missed=%d behind_ms=%.3f inflight=%d n=%d sum_us=%d max_us=%d h=%s",
                PREFIX, now(), s - lastSent, a - lastAcked, e - lastErrors, m - lastMissed,
                behindMs(System.nanoTime()), s - a - e, done.n, done.sumUs, done.maxUs,
                done.histogram());
        lastSent = s;
        lastAcked = a;
        lastErrors = e;
        lastMissed = m;
        System.out.println(line);
        System.out.flush();
    }

    void end() {
        if (ended.compareAndSet(false, true)) {
            report();
            System.out.printf(Locale.ROOT, "%s-end t=%s sent=%d acked=%d errors=%d missed=%d%n",
                    PREFIX, now(), sent.get(), ackedTotal(), errors.get(), missed.get());
            System.out.flush();
        }
    }

    void run(long reportMs) {
        // The first send would wait for the topic's metadata; fetch it before the schedule.
        producer.partitionsFor(topic);
        t0 = System.nanoTime();
        System.out.printf(Locale.ROOT, "%s-start t=%s rate=%s size=%d slots=%d max_lateness_ms=%d%n",
                PREFIX, now(), rate > 0 ? String.format(Locale.ROOT, "%.6f", rate) : "-1",
                payload.length, slots, maxLateNs / 1_000_000L);
        System.out.flush();
        ScheduledExecutorService reporter = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "greenflow-reporter");
            t.setDaemon(true);
            return t;
        });
        reporter.scheduleAtFixedRate(() -> {
            synchronized (this) {
                if (!ended.get()) {
                    report();
                }
            }
        }, reportMs, reportMs, TimeUnit.MILLISECONDS);
        long k = 0;
        while (k < slots) {
            long now = System.nanoTime();
            long intended;
            if (rate > 0) {
                long due = due(k);
                if (now < due) {
                    LockSupport.parkNanos(Math.max(due - now, MIN_PARK_NS));
                    continue;
                }
                if (now - due > maxLateNs) {
                    // Too late: give these slots up rather than burst to catch up.
                    long keep = Math.min(Math.max(slotAt(now - maxLateNs), k + 1), slots);
                    missedNs.addAndGet((keep < slots ? due(keep) : now) - due(k));
                    synchronized (lock) {
                        for (long j = k; j < keep; j++) {
                            interval.record((now - due(j)) / 1000);
                        }
                    }
                    missed.addAndGet(keep - k);
                    k = keep;
                    next.lazySet(k);
                    continue;
                }
                intended = due;
            } else {
                intended = now;
            }
            final long from = intended;
            producer.send(new ProducerRecord<>(topic, payload), new Callback() {
                @Override
                public void onCompletion(RecordMetadata metadata, Exception exception) {
                    if (exception != null) {
                        if (errors.incrementAndGet() <= ERRORS_PRINTED) {
                            exception.printStackTrace(System.out);
                        }
                    } else {
                        ack((System.nanoTime() - from) / 1000);
                    }
                }
            });
            sent.lazySet(sent.get() + 1);
            k++;
            next.lazySet(k);
        }
        producer.flush();
        synchronized (this) {
            end();
        }
        reporter.shutdownNow();
        producer.close();
    }

    static void usage(String why) {
        System.err.println(PREFIX + ": " + why);
        System.err.println("usage: ScheduledProducer --bootstrap-server HOST:PORT --topic T "
                + "--rate MSG_PER_S|-1 --record-size BYTES (--seconds S | --num-records N) "
                + "[--ramp-seconds 0] [--report-interval-ms 500] [--max-lateness-ms 10] "
                + "[--producer-prop KEY=VALUE ...]");
        System.exit(2);
    }

    public static void main(String[] args) {
        String bootstrap = null, topic = null;
        double rate = 0, seconds = 0, ramp = 0;
        int size = 0;
        long records = 0, reportMs = 500, maxLateMs = 10;
        List<String> extra = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String key = args[i];
            if (i + 1 >= args.length) {
                usage("missing the value of " + key);
            }
            String value = args[++i];
            switch (key) {
                case "--bootstrap-server": bootstrap = value; break;
                case "--topic": topic = value; break;
                case "--rate": rate = Double.parseDouble(value); break;
                case "--record-size": size = Integer.parseInt(value); break;
                case "--seconds": seconds = Double.parseDouble(value); break;
                case "--num-records": records = Long.parseLong(value); break;
                case "--ramp-seconds": ramp = Double.parseDouble(value); break;
                case "--report-interval-ms": reportMs = Long.parseLong(value); break;
                case "--max-lateness-ms": maxLateMs = Long.parseLong(value); break;
                case "--producer-prop": extra.add(value); break;
                default: usage("unknown option " + key);
            }
        }
        if (bootstrap == null || topic == null || size < 1 || reportMs < 1 || maxLateMs < 0
                || rate == 0 || (records <= 0 && (rate < 0 || seconds <= 0))) {
            usage("needs --bootstrap-server, --topic, --record-size >= 1, a --rate (-1: as fast "
                    + "as it can), and --seconds > 0 or --num-records > 0 (--rate -1: --num-records)");
        }
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        for (String kv : extra) {
            int eq = kv.indexOf('=');
            if (eq < 1) {
                usage("--producer-prop takes KEY=VALUE, got " + kv);
            }
            props.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        ScheduledProducer gen =
                new ScheduledProducer(topic, rate, size, seconds, records, ramp, maxLateMs, props);
        // SIGTERM: the last interval and the totals still get printed.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            synchronized (gen) {
                gen.end();
            }
        }, "greenflow-end"));
        gen.run(reportMs);
    }
}
