/* The member card: ask the server for a new QR code before the shown one expires (each code is good for a minute
 * and one use), and count down. A file of its own, not inline: the page's Content-Security-Policy runs no inline
 * script. */
(function () {
  "use strict";
  function start() {
    var img = document.getElementById("member-qr");
    var left = document.getElementById("member-qr-left");
    if (!img) { return; }
    var refresh = parseInt(img.getAttribute("data-refresh"), 10) || 45;
    var ttl = parseInt(img.getAttribute("data-ttl"), 10) || 60;
    var shown = Date.now();
    function renew() {
      img.src = img.getAttribute("data-src") + "?t=" + Date.now();
      shown = Date.now();
    }
    setInterval(function () {
      var age = (Date.now() - shown) / 1000;
      if (age >= refresh) { renew(); age = 0; }
      if (left) { left.textContent = String(Math.max(0, Math.round(ttl - age))); }
    }, 1000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { renew(); }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
