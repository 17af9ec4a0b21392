from audit.models import AuditRecord
from audit.verification import verify_log
from core.accounts.callers import Caller
from registry.services import model_create


def test_model_create_appends_one_verifying_record(alice):
    mark = AuditRecord.objects.count()  # the installation's and the cast's own records
    model = model_create(caller=Caller(user=alice), name="credit-score", risk_tier="high")
    records = list(AuditRecord.objects.order_by("seq"))[mark:]
    assert [r.action for r in records] == ["registered_model.created"]
    assert records[0].object_id == str(model.pk)
    assert verify_log().ok
