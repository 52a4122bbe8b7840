/*
 * Carrier dr.js: Tencent Cloud Captcha with the vendor's front-end
 * disaster-recovery scheme. When the vendor's script cannot load (an error,
 * a timeout) or its CAPTCHA cannot start, the page gets a disaster-recovery
 * ticket instead of a dead end, and the back end decides on it (Carrier
 * answers degraded_allow, reason dr_ticket, when the site accepts them).
 *
 *   CarrierCaptcha.tencent({appId: '190000000', onResult: function (res) {
 *     // res.closed: the user closed the CAPTCHA, nothing to send.
 *     // Otherwise send res.ticket and res.randstr to the back end;
 *     // res.errorCode is set on a disaster-recovery ticket.
 *   }});
 *
 * Options: appId (CaptchaAppId), onResult, scriptUrl (default Tencent's
 * TJCaptcha.js), timeoutMs (how long the script may take to load, default
 * 5000), captchaOptions (passed to new TencentCaptcha). Plain ES5, no
 * dependencies.
 */
(function (window, document) {
  'use strict';

  var TENCENT_SCRIPT = 'https://turing.captcha.qcloud.com/TJCaptcha.js';
  var DEFAULT_TIMEOUT_MS = 5000;

  // Scripts being loaded, by URL: each waits for the same script element.
  var loading = {};

  // load calls ready once TencentCaptcha may be defined, or failed when the
  // script cannot be loaded. A failed load is forgotten, so that the next
  // attempt loads the script again.
  function load(url, ready, failed) {
    if (typeof window.TencentCaptcha === 'function') {
      ready();
      return;
    }
    var waiting = loading[url];
    if (waiting) {
      waiting.push({ ready: ready, failed: failed });
      return;
    }
    waiting = loading[url] = [{ ready: ready, failed: failed }];
    var script = document.createElement('script');
    function settle(ok) {
      script.onload = script.onerror = null;
      delete loading[url];
      if (!ok && script.parentNode) {
        script.parentNode.removeChild(script);
      }
      for (var i = 0; i < waiting.length; i++) {
        (ok ? waiting[i].ready : waiting[i].failed)();
      }
    }
    // Both handlers are in place before the script can load.
    script.onload = function () { settle(true); };
    script.onerror = function () { settle(false); };
    script.async = true;
    script.src = url;
    (document.head || document.getElementsByTagName('head')[0]).appendChild(script);
  }

  // tencent runs one verification: it loads the vendor's script (once per
  // page) and shows the CAPTCHA; onResult is called once.
  function tencent(opts) {
    opts = opts || {};
    var appid = String(opts.appId || '');
    var onResult = typeof opts.onResult === 'function' ? opts.onResult : function () {};
    var timeoutMs = opts.timeoutMs > 0 ? opts.timeoutMs : DEFAULT_TIMEOUT_MS;
    var settled = false;
    var timer = null;

    // The CAPTCHA's callback decides on ticket and errorCode, not ret:
    //   closed by the user:      {ret: 2, ticket: null}
    //   verified:                {ret: 0, ticket, randstr}
    //   disaster-recovery ticket {ret: 0, ticket, randstr, errorCode, errorMessage}
    function callback(res) {
      if (settled) {
        return;
      }
      settled = true;
      clearTimeout(timer);
      res = res || {};
      if (res.ticket) {
        var out = { ticket: res.ticket, randstr: res.randstr };
        if (res.errorCode) {
          out.errorCode = res.errorCode;
          out.errorMessage = res.errorMessage;
        }
        onResult(out);
        return;
      }
      onResult({ closed: true, ret: res.ret });
    }

    // Defined before the script loads: a disaster-recovery ticket, made as
    // Tencent's scheme makes it.
    function loadErrorCallback() {
      var ticket = 'terror_1001_' + appid + '_' + Math.floor(new Date().getTime() / 1000);
      callback({
        ret: 0,
        randstr: '@' + Math.random().toString(36).substr(2),
        ticket: ticket,
        errorCode: 1001,
        errorMessage: 'jsload_error'
      });
    }

    function show() {
      if (settled) {
        return; // timed out before the script arrived
      }
      clearTimeout(timer);
      try {
        var captcha = new window.TencentCaptcha(appid, callback, opts.captchaOptions || {});
        captcha.show();
      } catch (error) {
        if (settled) {
          throw error; // thrown by onResult, not by the CAPTCHA
        }
        loadErrorCallback();
      }
    }

    timer = setTimeout(loadErrorCallback, timeoutMs);
    load(opts.scriptUrl || TENCENT_SCRIPT, show, loadErrorCallback);
  }

  var api = window.CarrierCaptcha || {};
  api.tencent = tencent;
  window.CarrierCaptcha = api;
})(window, document);
