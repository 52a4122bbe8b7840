// An SNS HTTP(S) endpoint as SNS users write one: every message is checked
// with the published sns-validator package (signature against the
// certificate at SigningCertURL, whose host must match the configured
// pattern); a SubscriptionConfirmation is confirmed by GETting its
// SubscribeURL; notifications are printed. One JSON line per event on stdout.
'use strict';
const http = require('http');
const https = require('https');
const MessageValidator = require('sns-validator');

const validator = new MessageValidator(new RegExp(process.env.SNS_CERT_HOST_PATTERN));
const print = (o) => console.log(JSON.stringify(o));

const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    let msg;
    try {
      msg = JSON.parse(body);
    } catch (e) {
      print({ event: 'not_json', body });
      res.writeHead(400);
      res.end();
      return;
    }
    validator.validate(msg, (err, m) => {
      if (err) {
        print({ event: 'invalid', type: msg.Type, error: String(err) });
        res.writeHead(403);
        res.end();
        return;
      }
      if (m.Type === 'SubscriptionConfirmation') {
        https.get(m.SubscribeURL, (r) => {
          let b = '';
          r.on('data', (c) => { b += c; });
          r.on('end', () => {
            print({ event: 'confirmed', status: r.statusCode, header: req.headers['x-amz-sns-message-type'] });
            res.writeHead(200);
            res.end();
          });
        }).on('error', (e) => {
          print({ event: 'confirm_failed', error: String(e) });
          res.writeHead(500);
          res.end();
        });
        return;
      }
      print({ event: 'notification', message: m.Message, subject: m.Subject, version: m.SignatureVersion,
        header: req.headers['x-amz-sns-message-type'] });
      res.writeHead(200);
      res.end();
    });
  });
});
server.listen(0, '127.0.0.1', () => print({ event: 'listening', port: server.address().port }));
