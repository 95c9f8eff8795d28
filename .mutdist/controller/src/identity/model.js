export const ROLES = ['admin', 'user', 'agent'];
//# sourceMappingURL=model.js.map