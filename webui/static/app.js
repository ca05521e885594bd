// lbd console: small progressive enhancements. Every screen works without
// this file; it only adds the live refresh, confirmations and field hiding.
(function () {
  'use strict';

  // Live regions: [data-live] elements are refreshed from their URL, which
  // answers the same server-rendered HTML as the page (no client templates).
  var live = document.querySelector('[data-live]');
  var state = document.getElementById('live-state');
  var every = parseInt(document.body.getAttribute('data-refresh'), 10) || 3000;
  function mark(cls, text) {
    if (!state) return;
    state.className = 'live-state ' + cls;
    state.textContent = text;
  }
  if (live) {
    var busy = false;
    var tick = function () {
      if (busy || document.hidden) return;
      // Never pull a form away from someone typing into it, nor a button
      // from under the pointer about to click it.
      var a = document.activeElement;
      if (a && live.contains(a) && (a.tagName === 'INPUT' || a.tagName === 'SELECT')) return;
      if (live.querySelector('button:hover, input:hover, a:hover')) return;
      busy = true;
      fetch(live.getAttribute('data-live'), {
        headers: { 'X-LBD-Fragment': '1' },
        credentials: 'same-origin',
        cache: 'no-store'
      }).then(function (r) {
        if (r.status === 401) {
          window.location.href = '/login?next=' + encodeURIComponent(window.location.pathname);
          return null;
        }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.text();
      }).then(function (html) {
        if (html === null) return;
        live.innerHTML = html;
        mark('ok', 'live · ' + new Date().toLocaleTimeString());
      }).catch(function () {
        mark('stale', 'not updating');
      }).then(function () { busy = false; });
    };
    mark('ok', 'live');
    window.setInterval(tick, every);
  } else if (state) {
    state.hidden = true;
  }

  // Forms with data-confirm ask first (delete, failover).
  document.addEventListener('submit', function (e) {
    var msg = e.target.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  // Monitoring: show only the field groups the chosen check type uses.
  var type = document.getElementById('f-type');
  if (type) {
    var groups = document.querySelectorAll('fieldset[data-types]');
    var sync = function () {
      for (var i = 0; i < groups.length; i++) {
        var types = groups[i].getAttribute('data-types').split(' ');
        groups[i].hidden = types.indexOf(type.value) < 0;
      }
    };
    type.addEventListener('change', sync);
    sync();
  }

  // Redundancy: grey out the settings while VRRP is off.
  var vrrp = document.getElementById('f-enabled');
  if (vrrp) {
    var form = vrrp.form;
    var toggle = function () {
      var sets = form.querySelectorAll('fieldset');
      for (var i = 0; i < sets.length; i++) {
        if (!sets[i].contains(vrrp)) sets[i].classList.toggle('off', !vrrp.checked);
      }
    };
    vrrp.addEventListener('change', toggle);
    toggle();
  }
})();
