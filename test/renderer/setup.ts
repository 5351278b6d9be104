// What jsdom lacks and the window uses.
Element.prototype.scrollIntoView = function scrollIntoView(): void {};

// The search hit's flash tells its end with an AnimationEvent (its animationName).
class JsdomAnimationEvent extends Event {
  readonly animationName: string;
  readonly elapsedTime: number;
  readonly pseudoElement: string;
  constructor(type: string, init: AnimationEventInit = {}) {
    super(type, init);
    this.animationName = init.animationName ?? '';
    this.elapsedTime = init.elapsedTime ?? 0;
    this.pseudoElement = init.pseudoElement ?? '';
  }
}
if (!('AnimationEvent' in window)) Object.assign(window, { AnimationEvent: JsdomAnimationEvent });
