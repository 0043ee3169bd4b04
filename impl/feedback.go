package impl

import (
	"context"

	"apiv4/gen"
)

// SendFeedback stores the caller's message for the operators.
func (s *Server) SendFeedback(ctx context.Context,
	req gen.SendFeedbackRequestObject) (gen.SendFeedbackResponseObject, error) {
	if err := s.store.SendFeedback(ctx, principal(ctx), req.Body.Message); err != nil {
		return nil, err
	}
	return gen.SendFeedback200JSONResponse{}, nil
}
