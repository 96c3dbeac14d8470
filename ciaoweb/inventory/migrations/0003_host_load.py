"""Host.load (instances per host, see ciaoweb.inventory.load) and the scheduler's index.

The counter starts from the instances that exist now."""

from django.db import migrations, models
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def count_instances(apps, schema_editor):
    Host = apps.get_model("inventory", "Host")
    Instance = apps.get_model("instances", "Instance")
    counted = (
        Instance.objects.filter(host=OuterRef("pk"))
        .order_by()
        .values("host")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Host.objects.update(load=Coalesce(Subquery(counted, output_field=IntegerField()), Value(0)))


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0002_alter_host_name"),
        ("instances", "0003_alter_instance_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="host",
            name="load",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_instances, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="host",
            index=models.Index(
                fields=["state", "is_network_node", "load", "name"],
                name="inventory_host_placement",
            ),
        ),
    ]
