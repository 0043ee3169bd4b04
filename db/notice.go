package db

// notification builds an instantaneous event in the principal's account,
// caused by the principal, or by the system when p is nil (the caller then
// sets AccountID). ent.ID is an int64 or nil.
func notification(p *Principal, action, message string, ent *Entity, now int64) *Event {
	e := &Event{Action: action, Status: "notification", Message: &message, Created: now, Updated: now}
	if p != nil {
		e.AccountID, e.Username = p.AccountID, &p.Username
	}
	if ent != nil {
		e.EntityType, e.EntityLabel, e.EntityURL = &ent.Type, &ent.Label, &ent.URL
		if id, ok := ent.ID.(int64); ok {
			e.EntityID = &id
		}
	}
	return e
}
