import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { csvField, formatProtocolEvent, parseCsvLine, parseProtocolLogFileName, protocolLogFileName, protocolLogHeader } from '../../../src/logging/protocol-csv.js';

describe('protocol log CSV', () => {
  test('header lines in Exchange order', () => {
    assert.equal(
      protocolLogHeader('SMTP Receive Protocol Log', new Date('2024-03-05T09:00:00.412Z')),
      '#Software: Mailyard\r\n#Version: 15.0.0.0\r\n#Log-type: SMTP Receive Protocol Log\r\n#Date: 2024-03-05T09:00:00.412Z\r\n' +
        '#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n',
    );
  });
  const fields: Array<[string, string]> = [
    ['EHLO mx1.example', 'EHLO mx1.example'],
    ['220 a, b', '"220 a, b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\r\nlines', 'two lines'],
    ['bare\nLF and bare\rCR', 'bare LF and bare CR'],
    ['line\n', '"line "'],
    [' leading space', '" leading space"'],
    ['trailing tab\t', '"trailing tab\t"'],
    ['', ''],
  ];
  for (const [input, out] of fields) test(`field ${JSON.stringify(input)}`, () => assert.equal(csvField(input), out));

  test('an event line round-trips through the CSV parser', () => {
    const line = formatProtocolEvent({
      timestamp: new Date('2024-03-05T09:14:07.118Z'),
      connectorId: 'EX01\\Default Frontend EX01',
      sessionId: '08DC3CF1A2B4C6D8',
      sequence: 2,
      localEndpoint: '10.0.0.11:25',
      remoteEndpoint: '198.51.100.23:49152',
      event: '>',
      data: '220 mail.contoso.com ready at Tue, 5 Mar 2024 09:14:07 +0000',
    });
    assert.equal(line, '2024-03-05T09:14:07.118Z,EX01\\Default Frontend EX01,08DC3CF1A2B4C6D8,2,10.0.0.11:25,198.51.100.23:49152,>,"220 mail.contoso.com ready at Tue, 5 Mar 2024 09:14:07 +0000",\r\n');
    assert.deepEqual(parseCsvLine(line), ['2024-03-05T09:14:07.118Z', 'EX01\\Default Frontend EX01', '08DC3CF1A2B4C6D8', '2', '10.0.0.11:25', '198.51.100.23:49152', '>', '220 mail.contoso.com ready at Tue, 5 Mar 2024 09:14:07 +0000', '']);
  });
  test('hourly file names in UTC', () => {
    assert.equal(protocolLogFileName('RECV', new Date('2023-01-11T16:59:59Z'), 1), 'RECV2023011116-1.LOG');
    assert.equal(protocolLogFileName('SEND', new Date('2024-03-05T09:00:00Z'), 12), 'SEND2024030509-12.LOG');
    assert.deepEqual(parseProtocolLogFileName('RECV2023011116-3.LOG'), { prefix: 'RECV', hour: '2023011116', instance: 3 });
    assert.equal(parseProtocolLogFileName('notes.txt'), undefined);
  });
});
