#!/usr/bin/env bash
# The compose stack, as an operator starts it, answers: a transaction in, a decision out -
# through the REST API and through the stream. Run by the GitHub workflow where Docker exists:
#   deploy/compose-smoke.sh        (from the repository root; makes .env if there is none)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f .env ]; then
  key="ops:$(openssl rand -hex 16)"
  {
    echo "POSTGRES_PASSWORD=$(openssl rand -hex 16)"
    echo "GRAFANA_ADMIN_PASSWORD=$(openssl rand -hex 16)"
    echo "FRAUD_API_KEYS=$key"
  } > .env
fi
secret="$(sed -n 's/^FRAUD_API_KEYS=[^:]*:\([^:,]*\).*/\1/p' .env)"
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
transaction="{\"transaction_id\":\"smoke-$RANDOM\",\"event_time\":\"$now\",\"card_id\":\"tok_smoke\",\"terminal_id\":\"T-smoke\",\"amount\":42.5}"

docker compose up -d --wait --wait-timeout 600

echo "== REST: POST /predict"
answer="$(curl -fsS -H "X-API-Key: $secret" -H 'Content-Type: application/json' \
  -d "$transaction" http://127.0.0.1:8000/predict)"
echo "$answer"
echo "$answer" | grep -q '"decision":"\(approve\|review\|decline\)"'

echo "== stream: transactions -> transactions.scored"
echo "tok_smoke|$transaction" | docker compose exec -T kafka /opt/kafka/bin/kafka-console-producer.sh \
  --bootstrap-server kafka:9092 --topic transactions --property parse.key=true \
  --property key.separator='|'
scored="$(docker compose exec -T kafka /opt/kafka/bin/kafka-console-consumer.sh \
  --bootstrap-server kafka:9092 --topic transactions.scored --from-beginning \
  --max-messages 1 --timeout-ms 120000)"
echo "$scored"
echo "$scored" | grep -q '"decision":"\(approve\|review\|decline\)"'
echo "compose smoke: a decision by REST and by the stream"
