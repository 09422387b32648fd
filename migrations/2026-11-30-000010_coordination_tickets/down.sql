DROP TABLE coordination_ticket_history;
DROP TABLE coordination_tickets;
