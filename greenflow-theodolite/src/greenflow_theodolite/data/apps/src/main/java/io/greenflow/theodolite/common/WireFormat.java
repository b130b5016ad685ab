package io.greenflow.theodolite.common;

import java.nio.charset.StandardCharsets;

/**
 * ActivePowerRecord in the Confluent schema registry's wire format, written and read by hand:
 * byte 0x00 (magic), the schema id (4 bytes, big-endian), then the record in Avro binary
 * encoding: {@code identifier} as a length-prefixed UTF-8 string (length a zigzag varint
 * long), {@code timestamp} as a zigzag varint long, {@code valueInW} as 8 bytes of a
 * little-endian IEEE 754 double.
 */
public final class WireFormat {
  public static final byte MAGIC = 0;
  /** Magic byte and schema id. */
  public static final int HEADER_BYTES = 5;

  private WireFormat() {}

  /** The record's bytes, as the Confluent Avro serializer writes them. */
  public static byte[] encode(int schemaId, ActivePowerRecord record) {
    byte[] id = record.identifier().getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[HEADER_BYTES + 10 + id.length + 10 + 8];
    int p = 0;
    out[p++] = MAGIC;
    out[p++] = (byte) (schemaId >>> 24);
    out[p++] = (byte) (schemaId >>> 16);
    out[p++] = (byte) (schemaId >>> 8);
    out[p++] = (byte) schemaId;
    p = writeLong(out, p, id.length);
    System.arraycopy(id, 0, out, p, id.length);
    p += id.length;
    p = writeLong(out, p, record.timestamp());
    p = writeDouble(out, p, record.valueInW());
    return p == out.length ? out : java.util.Arrays.copyOf(out, p);
  }

  /** The schema id of a wire-format message; IllegalArgumentException if it is none. */
  public static int schemaId(byte[] data) {
    if (data == null || data.length < HEADER_BYTES || data[0] != MAGIC) {
      throw new IllegalArgumentException(
          "not a schema-registry wire-format message (no magic byte 0 and schema id)");
    }
    return ((data[1] & 0xff) << 24) | ((data[2] & 0xff) << 16) | ((data[3] & 0xff) << 8)
        | (data[4] & 0xff);
  }

  /** Reads an ActivePowerRecord written by {@link #encode} (or Confluent's serializer). */
  public static ActivePowerRecord decode(byte[] data) {
    schemaId(data);
    Reader r = new Reader(data, HEADER_BYTES);
    String identifier = r.string();
    long timestamp = r.readLong();
    double value = r.readDouble();
    return new ActivePowerRecord(identifier, timestamp, value);
  }

  /** Writes {@code v} as a zigzag varint at {@code p}; the position after it. */
  static int writeLong(byte[] out, int p, long v) {
    long n = (v << 1) ^ (v >> 63);
    while ((n & ~0x7FL) != 0) {
      out[p++] = (byte) ((n & 0x7F) | 0x80);
      n >>>= 7;
    }
    out[p++] = (byte) n;
    return p;
  }

  static int writeDouble(byte[] out, int p, double d) {
    long bits = Double.doubleToLongBits(d);
    for (int i = 0; i < 8; i++) {
      out[p++] = (byte) (bits >>> (8 * i));
    }
    return p;
  }

  /** Reads Avro binary values from a byte array. */
  static final class Reader {
    private final byte[] data;
    private int pos;

    Reader(byte[] data, int pos) {
      this.data = data;
      this.pos = pos;
    }

    long readLong() {
      long n = 0;
      int shift = 0;
      while (true) {
        if (pos >= data.length) {
          throw new IllegalArgumentException("truncated Avro long");
        }
        int b = data[pos++] & 0xff;
        n |= (long) (b & 0x7F) << shift;
        if ((b & 0x80) == 0) {
          break;
        }
        shift += 7;
        if (shift > 63) {
          throw new IllegalArgumentException("malformed Avro long (more than 10 bytes)");
        }
      }
      return (n >>> 1) ^ -(n & 1);
    }

    String string() {
      long len = readLong();
      if (len < 0 || len > data.length - pos) {
        throw new IllegalArgumentException("bad Avro string length " + len);
      }
      String s = new String(data, pos, (int) len, StandardCharsets.UTF_8);
      pos += (int) len;
      return s;
    }

    double readDouble() {
      if (pos + 8 > data.length) {
        throw new IllegalArgumentException("truncated Avro double");
      }
      long bits = 0;
      for (int i = 0; i < 8; i++) {
        bits |= (long) (data[pos++] & 0xff) << (8 * i);
      }
      return Double.longBitsToDouble(bits);
    }
  }
}
