/* Instances list: rows keyed by data-instance-id get their state and host patched; an
 * instance the page does not know yet re-renders the rows (this page of them); a
 * deleted one disappears. Either changes the count, so the pager is re-rendered too. */
(function () {
  "use strict";
  var table = document.getElementById("instances");
  if (!table || !window.CiaoLive) return;
  CiaoLive.on("instance.updated", function (instance) {
    var row = table.querySelector('tr[data-instance-id="' + instance.id + '"]');
    if (instance.deleted) {
      if (row) row.remove();
      CiaoLive.refreshFragment("pager");
      return;
    }
    if (!row) {
      CiaoLive.refreshFragment("rows");
      CiaoLive.refreshFragment("pager");
      return;
    }
    CiaoLive.setState(row.querySelector('[data-field="state"]'), instance.state);
    CiaoLive.setField(row, "host_name", instance.host_name);
  });
})();
