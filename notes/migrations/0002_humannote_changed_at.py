from django.db import migrations, models
from django.db.models import F
from django.db.models.functions import Coalesce


def from_existing(apps, schema_editor):
    HumanNote = apps.get_model("notes", "HumanNote")
    HumanNote.objects.update(changed_at=Coalesce(F("delivered_at"), F("created_at")))


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="humannote",
            name="changed_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(from_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="humannote",
            name="changed_at",
            field=models.DateTimeField(),
        ),
    ]
