package io.greenflow.theodolite.common;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * SIGTERM and SIGINT as a request to stop cleanly: the JVM does not begin its shutdown (which
 * would end with status 143); {@code onStop} runs once, in the signal's thread, and the main
 * thread decides the exit status. Falls back to a shutdown hook where the JDK's
 * {@code sun.misc.Signal} is not available.
 */
public final class Signals {
  private Signals() {}

  public static void onStop(Runnable onStop) {
    AtomicBoolean once = new AtomicBoolean();
    Runnable run =
        () -> {
          if (once.compareAndSet(false, true)) {
            onStop.run();
          }
        };
    try {
      for (String name : new String[] {"TERM", "INT"}) {
        sun.misc.Signal.handle(new sun.misc.Signal(name), sig -> run.run());
      }
    } catch (Throwable e) {
      Runtime.getRuntime().addShutdownHook(new Thread(run, "greenflow-stop"));
    }
  }
}
