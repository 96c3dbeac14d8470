/* Instances list: rows keyed by data-instance-id get their state and host patched; an
 * instance the page does not know yet re-renders the rows; a deleted one disappears. */
(function () {
  "use strict";
  var table = document.getElementById("instances");
  if (!table || !window.CiaoLive) return;
  CiaoLive.on("instance.updated", function (instance) {
    var row = table.querySelector('tr[data-instance-id="' + instance.id + '"]');
    if (instance.deleted) {
      if (row) row.remove();
      return;
    }
    if (!row) {
      CiaoLive.refreshFragment("rows");
      return;
    }
    CiaoLive.setState(row.querySelector('[data-field="state"]'), instance.state);
    CiaoLive.setField(row, "host_name", instance.host_name);
  });
})();
