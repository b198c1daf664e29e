/* The WeChat Wi-Fi hand-off (微信连Wi-Fi): load WeChat's script, then call its Wechat_GotoRedirect with the signed
 * parameters the server put into the page as a JSON block. A file of its own, not inline: the page's
 * Content-Security-Policy runs no inline script. */
(function () {
  "use strict";
  var me = document.currentScript;
  var w = JSON.parse(document.getElementById("keliu-wechat").textContent);

  function failed() {
    var e = document.getElementById("wechat-error");
    e.hidden = false;
    e.textContent = "无法连接微信，请改用手机号登录。/ WeChat cannot be reached; please use your phone number.";
  }

  var s = document.createElement("script");
  s.src = me.getAttribute("data-wechat-js");
  s.onload = function () {
    if (typeof window.Wechat_GotoRedirect !== "function") { failed(); return; }
    window.Wechat_GotoRedirect(w.appId, w.extend, w.timestamp, w.sign, w.shopId, w.authUrl, w.mac, w.ssid,
                               w.bssid);
  };
  s.onerror = failed;
  document.body.appendChild(s);
})();
