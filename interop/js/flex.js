#!/usr/bin/env node
// flex.js drives pulsartest (or any Pulsar broker) with pulsar-flex, a pure
// JavaScript Pulsar client: it subscribes, produces N messages with distinct
// contents, consumes and acknowledges them, and reports on stdout.
//
//   node flex.js <broker-url> <topic> [count] [mode]
//
//   broker-url  pulsar://host:port (also FLEX_URL)
//   topic       e.g. persistent://public/default/flex (also FLEX_TOPIC)
//   count       how many messages, default 100 (also FLEX_COUNT)
//   mode        "single": one SEND per message (default);
//               "batch":  SENDs of up to 10 messages each, as pulsar-flex
//                         batches them (also FLEX_MODE)
//
// stdout holds only JSON, one object a line:
//   {"content":"message-0","messageId":{"ledgerId":..,"entryId":..,
//    "partition":..,"batchIndex":..},"redeliveryCount":0}  per message consumed
//   {"summary":{"produced":N,"consumed":N,"acked":N,"mode":"single"}}  at the end
// pulsar-flex's own log goes to stderr (level from FLEX_LOG_LEVEL, 0..5,
// default 2 = warnings). The script exits 0 only when every message was
// produced, consumed in order and acknowledged; it exits 1 on any error and
// on its own after FLEX_TIMEOUT_MS (default 30000) whatever happens.
'use strict';

const { Producer, Consumer, logLevel } = require('pulsar-flex');

const url = process.argv[2] || process.env.FLEX_URL;
const topic = process.argv[3] || process.env.FLEX_TOPIC;
const count = Number(process.argv[4] || process.env.FLEX_COUNT || 100);
const mode = process.argv[5] || process.env.FLEX_MODE || 'single';
const timeoutMs = Number(process.env.FLEX_TIMEOUT_MS || 30000);
const level = Number(process.env.FLEX_LOG_LEVEL || logLevel.WARN);
const batchSize = 10;

function fail(msg) {
  process.stderr.write(`flex.js: ${msg}\n`);
  process.exit(1);
}

if (!url || !topic) fail('usage: node flex.js <pulsar://host:port> <topic> [count] [single|batch]');
if (!Number.isInteger(count) || count <= 0) fail(`bad count ${count}`);
if (mode !== 'single' && mode !== 'batch') fail(`bad mode ${mode}`);

// pulsar-flex takes "host:port" discovery servers, not a service URL.
const m = /^pulsar:\/\/([^/:]+):(\d+)\/?$/.exec(url);
if (!m) fail(`not a pulsar://host:port URL: ${url}`);
const discoveryServers = [`${m[1]}:${m[2]}`];

// The deadline: whatever hangs, the script ends.
const deadline = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);

process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${e && e.stack ? e.stack : e}`));
process.on('uncaughtException', (e) => fail(`uncaught exception: ${e && e.stack ? e.stack : e}`));

// Log to stderr so that stdout is only our JSON.
const logCreator = () => ({ label, log }) => {
  process.stderr.write(`${JSON.stringify({ level: label, ...log })}\n`);
};

const contentOf = (i) => `message-${i}`;

async function main() {
  const consumer = new Consumer({
    topic,
    discoveryServers,
    subscription: 'flex-sub',
    subType: Consumer.SUB_TYPES.EXCLUSIVE,
    consumerName: 'flex-consumer',
    receiveQueueSize: 1000,
    logLevel: level,
    logCreator,
  });
  const producer = new Producer({
    topic,
    discoveryServers,
    producerAccessMode: Producer.ACCESS_MODES.SHARED,
    logLevel: level,
    logCreator,
  });

  // pulsar-flex 1.1.1 accepts an initialPosition option but never puts it
  // in the SUBSCRIBE command, so the subscription starts at the latest
  // message: subscribe before producing.
  await consumer.subscribe();

  let consumed = 0;
  let acked = 0;
  let settle;
  const done = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });

  await consumer.run({
    autoAck: false,
    onMessage: async ({ ack, message, command, redeliveryCount }) => {
      try {
        const content = Buffer.from(message).toString('utf8');
        const want = contentOf(consumed);
        if (content !== want) {
          throw new Error(`message ${consumed}: got ${JSON.stringify(content)}, want ${JSON.stringify(want)}`);
        }
        const id = command.messageId;
        consumed++;
        process.stdout.write(
          `${JSON.stringify({
            content,
            messageId: {
              ledgerId: id.ledgerid,
              entryId: id.entryid,
              partition: id.partition,
              batchIndex: id.batchIndex,
            },
            redeliveryCount,
          })}\n`
        );
        // Waits for the broker's ACK_RESPONSE (pulsar-flex sets request_id).
        await ack();
        acked++;
        if (acked === count) settle.resolve();
        else if (consumed > count) throw new Error(`more than ${count} messages consumed`);
      } catch (e) {
        settle.reject(e);
      }
    },
  });

  await producer.create();
  let produced = 0;
  if (mode === 'single') {
    for (let i = 0; i < count; i++) {
      await producer.sendMessage({ payload: contentOf(i) });
      produced++;
    }
  } else {
    for (let i = 0; i < count; i += batchSize) {
      const messages = [];
      for (let j = i; j < Math.min(i + batchSize, count); j++) {
        messages.push({ payload: contentOf(j), properties: { index: String(j) } });
      }
      await producer.sendBatch({ messages });
      produced += messages.length;
    }
  }

  await done;
  await producer.close();
  await consumer.unsubscribe();
  process.stdout.write(`${JSON.stringify({ summary: { produced, consumed, acked, mode } })}\n`);
}

main().then(
  () => {
    clearTimeout(deadline);
    // pulsar-flex keeps a 60 s pinger interval per client: leave now.
    process.exit(0);
  },
  (e) => fail(e && e.stack ? e.stack : String(e))
);
