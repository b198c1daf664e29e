/* The counter page: scan a QR code with the phone's camera (jsQR, served from static/vendor) and look the code up;
 * keep a redemption from being sent twice by a double tap (the server also answers a repeated idempotency key with
 * its first answer). A file of its own, not inline: the page's Content-Security-Policy runs no inline script. */
(function () {
  "use strict";
  function start() {
    var button = document.getElementById("scan-start");
    var video = document.getElementById("scan-video");
    var status = document.getElementById("scan-status");
    var input = document.getElementById("scan-code");
    var form = document.getElementById("scan-form");
    var canvas = document.createElement("canvas");
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    var stream = null;

    function say(text) { status.hidden = false; status.textContent = text; }
    // the words are the page's, in its language (data-msg-* on the button): no text in this file
    function msg(name) { return button.getAttribute("data-msg-" + name) || ""; }

    function stop() {
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
      video.hidden = true;
    }

    function tick() {
      if (!stream) { return; }
      if (video.readyState >= 2 && video.videoWidth > 0) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
        var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
        var found = window.jsQR(img.data, img.width, img.height, { inversionAttempts: "dontInvert" });
        if (found && found.data) {
          input.value = found.data;
          say(msg("read"));
          stop();
          form.submit();
          return;
        }
      }
      window.requestAnimationFrame(tick);
    }

    if (button) {
      button.addEventListener("click", function () {
        if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || typeof window.jsQR !== "function") {
          say(msg("no-scan"));
          return;
        }
        say(msg("point"));
        navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
          .then(function (s) {
            stream = s;
            video.srcObject = s;
            video.hidden = false;
            return video.play();
          })
          .then(function () { window.requestAnimationFrame(tick); })
          .catch(function () { stop(); say(msg("no-camera")); });
      });
    }

    Array.prototype.forEach.call(document.querySelectorAll(".redeem-form"), function (f) {
      f.addEventListener("submit", function (ev) {
        if (f.getAttribute("data-sent") === "1") { ev.preventDefault(); return; }
        f.setAttribute("data-sent", "1");
        var b = f.querySelector("button[type=submit]");
        if (b) { b.disabled = true; }
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
