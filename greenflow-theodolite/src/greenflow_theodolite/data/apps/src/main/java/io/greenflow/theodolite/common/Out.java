package io.greenflow.theodolite.common;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * The one writer of stdout: whole lines only, so that status lines (flushed at once) never
 * land inside a record line (buffered, flushed by {@link #flush()} and every status line).
 */
public final class Out {
  private static final PrintStream OUT =
      new PrintStream(
          new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16),
          false,
          StandardCharsets.UTF_8);

  private Out() {}

  /** A status line, written at once. */
  public static synchronized void status(String line) {
    OUT.print(line);
    OUT.print('\n');
    OUT.flush();
  }

  /** A data line, buffered. */
  public static synchronized void data(String line) {
    OUT.print(line);
    OUT.print('\n');
  }

  public static synchronized void flush() {
    OUT.flush();
  }
}
