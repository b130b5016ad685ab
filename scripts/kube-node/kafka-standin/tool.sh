#!/bin/bash
# /opt/kafka/bin/<tool>.sh stand-in: map the script name to the main class the real script runs.
case "$(basename "$0")" in
  kafka-server-start.sh) export KAFKA_LOG4J_OPTS="${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties}"
                         : "${KAFKA_HEAP_OPTS:=-Xmx1G -Xms1G}"; export KAFKA_HEAP_OPTS; c=kafka.Kafka ;;
  kafka-storage.sh) c=kafka.tools.StorageTool ;;
  kafka-topics.sh) c=org.apache.kafka.tools.TopicCommand ;;
  kafka-consumer-groups.sh) c=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  kafka-get-offsets.sh) c=org.apache.kafka.tools.GetOffsetShell ;;
  kafka-producer-perf-test.sh) c=org.apache.kafka.tools.ProducerPerformance ;;
  kafka-consumer-perf-test.sh) c=org.apache.kafka.tools.ConsumerPerformance ;;
  *) echo "no stand-in for $0" >&2; exit 1 ;;
esac
exec /opt/kafka/bin/kafka-run-class.sh "$c" "$@"
