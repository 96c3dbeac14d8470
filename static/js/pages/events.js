/* Events: the first page (the newest events) follows the log live: every message means
 * an event was recorded, so the rows and the pager are re-rendered (coalesced). Later
 * pages stay still; after a reconnect live.js refetches whatever page is shown. */
(function () {
  "use strict";
  if (!window.CiaoLive) return;
  var page = new URL(window.location.href).searchParams.get("page");
  if (page && page !== "1") return;
  CiaoLive.on("*", function () {
    CiaoLive.refreshFragment("events", 1000);
    CiaoLive.refreshFragment("pager", 1000);
  });
})();
