"""Host.load (instances per host, see ciaoweb.inventory.load) and the scheduler's index.

The counter starts from the instances that exist now."""

from django.db import migrations, models

from ciaoweb.inventory.load import instances_per_host


def count_instances(apps, schema_editor):
    Host = apps.get_model("inventory", "Host")
    Host.objects.update(load=instances_per_host(apps.get_model("instances", "Instance")))


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
